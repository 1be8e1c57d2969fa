"""The detector's pre-processing, the same arithmetic as src/preprocess.ts (checked by a
fixture test): stored values -> 128x128 box means -> MONOCHROME1 negated -> normalization by
the robust statistics of the run's first REFERENCE_FRAMES frames -> [frames, 3, 128, 128]:
the normalized frame, its difference from the per-pixel median of the first frames (the
reference), and the same difference for the mean of the frame and the two before it (less
noise). Everything a frame's input needs is known once the first REFERENCE_FRAMES frames and
the frame itself have arrived, so the model runs while the run is acquired."""
import os

import numpy as np

SIDE = 128
CLIP = 3.0
# Frames that set the normalization and the reference (all of them in a shorter run).
REFERENCE_FRAMES = 8
# Frames averaged in the third channel: the frame and the ones before it (fewer at the start).
# BALLOON_MEAN_FRAMES tries another count in training (src/preprocess.ts must then be changed to match).
MEAN_FRAMES = int(os.environ.get('BALLOON_MEAN_FRAMES', '3'))
CHANNELS = 3


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
    return channels(normalize(frames, photometric))
