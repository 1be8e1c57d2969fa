"""The detector's pre-processing, the same arithmetic as src/preprocess.ts (checked by a
fixture test): stored values -> 128x128 box means -> MONOCHROME1 negated -> per-run robust
normalization -> [frames, 2, 128, 128]: the normalized frame and its difference from the
run's per-pixel temporal median."""
import numpy as np

SIDE = 128
CLIP = 3.0


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


def preprocess(frames, photometric):
    small = resize(frames)
    if photometric == 'MONOCHROME1':
        small = -small
    centre, spread = run_stats(small)
    x = np.clip((small - centre) / spread, -CLIP, CLIP).astype(np.float32)
    med = np.sort(x, axis=0)[(x.shape[0] - 1) // 2]
    return np.stack([x, x - med[None]], axis=1)
