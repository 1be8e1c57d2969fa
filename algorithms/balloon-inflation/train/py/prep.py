"""The detector's pre-processing, the same arithmetic as src/preprocess.ts (checked by a
fixture test): stored values -> 128x128 box means -> MONOCHROME1 negated -> normalization by
the robust statistics of the run's first REFERENCE_FRAMES frames -> [frames, 3, 128, 128]:
the normalized frame, its difference from the per-pixel median of the first frames (the
reference), and the same difference for the mean of the frame and the two before it (less
noise). Everything a frame's input needs is known once the first REFERENCE_FRAMES frames and
the frame itself have arrived, so the model runs while the run is acquired."""
import os

import numpy as np

# BALLOON_SIDE tries another side of the reduced frames (src/boxes.ts must then be changed to match).
SIDE = int(os.environ.get('BALLOON_SIDE', '128'))
CLIP = 3.0
# Frames that set the normalization and the reference (all of them in a shorter run).
REFERENCE_FRAMES = 8
# Frames averaged in the third channel: the frame and the ones before it (fewer at the start).
# BALLOON_MEAN_FRAMES tries another count in training (src/preprocess.ts must then be changed to match).
MEAN_FRAMES = int(os.environ.get('BALLOON_MEAN_FRAMES', '3'))
CHANNELS = 3
# BALLOON_EQUALIZE=1 tries normalized frames mapped through the run's own intensity distribution
# (equalize), the same for any monotone encoding of the stored values (linear, log, gamma). Tried
# after 3.1.0 and not shipped (MODEL_CARD.md): src/preprocess.ts has no such step.
EQUALIZE = os.environ.get('BALLOON_EQUALIZE', '0') == '1'
# Knots of the mapping (quantiles of the first frames' mean over the exposed field) and the
# most and least it may stretch contrast against the linear normalization.
KNOTS = 16
STRETCH = 8.0


def box_edges(n):
    i = np.arange(SIDE)
    lo = (i * n) // SIDE
    hi = np.maximum(((i + 1) * n) // SIDE, lo + 1)
    return lo, hi


def resize(frames):
    t, r, c = frames.shape
    f = frames.astype(np.float64)
    r0, r1 = box_edges(r)
    c0, c1 = box_edges(c)
    p = np.zeros((t, r + 1, c))
    np.cumsum(f, axis=1, out=p[:, 1:])
    rows = p[:, r1] - p[:, r0]
    q = np.zeros((t, SIDE, c + 1))
    np.cumsum(rows, axis=2, out=q[:, :, 1:])
    out = q[:, :, c1] - q[:, :, c0]
    return out / ((r1 - r0)[:, None] * (c1 - c0)[None, :])


def at(sorted_values, p):
    return sorted_values[int(np.floor(p * (len(sorted_values) - 1)))]


def run_stats(small):
    """Centre and spread of the mean of `small` (frames) over the exposed field."""
    m = np.sort(small.mean(axis=0).ravel())
    lo, hi = at(m, 0.005), at(m, 0.995)
    inside = m[m > lo + 0.1 * (hi - lo)]
    if len(inside) < 16:
        inside = m
    centre = at(inside, 0.5)
    spread = at(inside, 0.95) - at(inside, 0.05)
    if not spread > 0:
        spread = max(hi - lo, 1.0)
    return centre, spread


def normalize(frames, photometric):
    """[frames, 128, 128] normalized by the first frames' statistics, clipped to +-CLIP (float32)."""
    small = resize(frames)
    if photometric == 'MONOCHROME1':
        small = -small
    k = min(len(small), REFERENCE_FRAMES)
    centre, spread = run_stats(small[:k])
    return np.clip((small - centre) / spread, -CLIP, CLIP).astype(np.float32)


def equalization(first):
    """Knots q and values z of the monotone piecewise-linear map that equalize applies, from the
    normalized first frames [k, 128, 128]: q are the quantiles j / KNOTS of their mean over the
    exposed field (as run_stats leaves it), and each piece's slope is what spreads them evenly
    over the width the linear normalization gives its 5-95th percentiles (1), kept within
    [1 / STRETCH, STRETCH] so that a nearly uniform region cannot turn its noise into structure."""
    m = np.sort(first.astype(np.float64).mean(axis=0).ravel())
    lo, hi = at(m, 0.005), at(m, 0.995)
    inside = m[m > lo + 0.1 * (hi - lo)]
    if len(inside) < 16:
        inside = m
    q = np.array([at(inside, j / KNOTS) for j in range(KNOTS + 1)])
    width = np.diff(q)
    slope = np.clip((1.0 / 0.9 / KNOTS) / np.maximum(width, 1e-9), 1.0 / STRETCH, STRETCH)
    z = np.concatenate([[0.0], np.cumsum(slope * width)])
    return q, z - mapped(np.array([at(inside, 0.5)]), q, z)[0]


def mapped(x, q, z):
    """x through the map with knots q and values z: linear between knots, slope 1 outside them."""
    j = np.clip(np.searchsorted(q, x, side='right') - 1, 0, len(q) - 2)
    slope = np.where(q[j + 1] > q[j], (z[j + 1] - z[j]) / np.maximum(q[j + 1] - q[j], 1e-300), 1.0)
    y = z[j] + slope * (x - q[j])
    y = np.where(x < q[0], z[0] + (x - q[0]), y)
    return np.where(x >= q[-1], z[-1] + (x - q[-1]), y)


def equalize(x):
    """Normalized frames [T, 128, 128] mapped through their run's own intensity distribution
    (equalization of the first REFERENCE_FRAMES frames), clipped to +-CLIP: any monotone
    encoding of the same image (linear, log, gamma) maps to nearly the same input."""
    q, z = equalization(x[: min(len(x), REFERENCE_FRAMES)])
    return np.clip(mapped(x.astype(np.float64), q, z), -CLIP, CLIP).astype(np.float32)


def prepared(x):
    """Normalized frames as the model reads them (equalized with BALLOON_EQUALIZE)."""
    return equalize(x) if EQUALIZE else x.astype(np.float32)


def reference(x):
    """Per-pixel lower median of the first REFERENCE_FRAMES normalized frames."""
    k = min(len(x), REFERENCE_FRAMES)
    return np.sort(x[:k], axis=0)[(k - 1) // 2]


def running_mean(x):
    """Mean of each frame and the MEAN_FRAMES - 1 before it (fewer at the start), float32."""
    out = np.empty_like(x, dtype=np.float32)
    for f in range(len(x)):
        out[f] = x[max(0, f - MEAN_FRAMES + 1): f + 1].astype(np.float64).mean(axis=0)
    return out


def channels(x, ref=None):
    """The model input [frames, CHANNELS, 128, 128] from normalized frames x."""
    if ref is None:
        ref = reference(x)
    m = running_mean(x)
    return np.stack([x, x - ref[None], m - ref[None]], axis=1).astype(np.float32)


def preprocess(frames, photometric):
    return channels(prepared(normalize(frames, photometric)))
