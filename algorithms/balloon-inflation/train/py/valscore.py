"""Event F1 of per-frame probabilities on a rendered validation split (`gen.py validation`),
with the shipped event rule (src/postprocess.ts) and the evaluation's matching (train/metrics.ts:
IoU >= 0.5, greedy), so that temporal.py can compare its weights on the tuning split without
the TypeScript probe. The held-out set is never read here."""
import glob
import json
import os

import numpy as np
import torch

from prep import preprocess


def validation_features(folder, frame_net):
    """(features [T, F], meta) per run of the folder, cached in folder/features.npz."""
    names = sorted(p[:-5] for p in glob.glob(f'{folder}/*.json'))
    metas = [json.load(open(n + '.json')) for n in names]
    cache = f'{folder}/features.npz'
    if os.path.exists(cache):
        z = np.load(cache)
        return [(z[f'r{i}'], m) for i, m in enumerate(metas)]
    out = {}
    with torch.no_grad():
        for i, (n, m) in enumerate(zip(names, metas)):
            frames = np.fromfile(n + '.u16', '<u2').reshape(m['frames'], m['size'], m['size'])
            out[f'r{i}'] = frame_net(torch.from_numpy(preprocess(frames, m['photometric']))).numpy()
    np.savez(cache, **out)
    return [(out[f'r{i}'], m) for i, m in enumerate(metas)]


def events_of(p, threshold=0.6, peak=0.95, max_gap=2, min_frames=3):
    """src/postprocess.ts inflationCandidates' events (no running median); the defaults are its
    INFLATED_THRESHOLD, EVENT_PEAK_THRESHOLD, MAX_GAP_FRAMES and MIN_EVENT_FRAMES (a test holds them together)."""
    n = len(p)
    on = p >= threshold
    f = 0
    while f < n:
        if on[f]:
            f += 1
            continue
        end = f
        while end < n and not on[end]:
            end += 1
        if f > 0 and end < n and end - f <= max_gap:
            on[f:end] = True
        f = end + 1 if end == f else end
    events = []
    f = 0
    while f < n:
        if not on[f]:
            f += 1
            continue
        end = f
        while end + 1 < n and on[end + 1]:
            end += 1
        if end - f + 1 >= min_frames and p[f: end + 1].max() >= peak:
            events.append((f, end))
        f = end + 1
    return events


def iou(a, b):
    overlap = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return 0 if overlap <= 0 else overlap / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def f1_of(counts):
    """Event F1 of (tp, fp, fn); each may also be an array (one F1 per element). 1 when there is
    nothing to find and nothing was found, as train/metrics.ts's eventF1."""
    tp, fp, fn = counts
    f1 = np.where(2 * tp + fp + fn == 0, 1.0, 2 * tp / np.maximum(1, 2 * tp + fp + fn))
    return f1 if f1.ndim else float(f1)


def run_counts(runs_probabilities, **rule):
    """Per run: (tp, fp, fn) of the events found with the rule, and whether it is balloon-free."""
    out = []
    for p, meta in runs_probabilities:
        truth = [tuple(e) for e in meta['events']]
        found = events_of(np.asarray(p), **rule)
        pairs = sorted(((iou(a, b), t, q) for t, a in enumerate(truth) for q, b in enumerate(found) if iou(a, b) >= 0.5), reverse=True)
        used_t, used_q = set(), set()
        for _, t, q in pairs:
            if t not in used_t and q not in used_q:
                used_t.add(t)
                used_q.add(q)
        out.append((len(used_t), len(found) - len(used_q), len(truth) - len(used_t), not truth))
    return out


def summary(counts):
    """Event F1, (tp, fp, fn), false events per balloon-free run, of run_counts' per-run counts."""
    tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
    free = sum(c[3] for c in counts)
    free_false = sum(c[1] for c in counts if c[3])
    return f1_of((tp, fp, fn)), (tp, fp, fn), free_false / max(1, free)


def score(runs_probabilities, **rule):
    """Event F1, (tp, fp, fn), false events per balloon-free run."""
    return summary(run_counts(runs_probabilities, **rule))


def paired_difference(counts_a, counts_b, rounds=2000, seed=1):
    """Event F1 of B minus A on the same runs, with a 95 % paired bootstrap interval (the runs
    drawn with replacement, both detectors scored on each draw): a difference whose interval
    holds 0 is not one that these runs can show."""
    a = np.array([c[:3] for c in counts_a], float)
    b = np.array([c[:3] for c in counts_b], float)
    rng = np.random.default_rng(seed)

    def f1(rows):
        return f1_of(rows.sum(axis=-2).T)

    draws = rng.integers(0, len(a), size=(rounds, len(a)))
    diffs = f1(b[draws]) - f1(a[draws])
    return float(f1(b) - f1(a)), float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))
