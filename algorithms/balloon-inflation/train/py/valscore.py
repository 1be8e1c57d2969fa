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


def events_of(p, threshold=0.7, peak=0.9, max_gap=2, min_frames=3):
    """src/postprocess.ts inflationCandidates' events (no running median)."""
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
    """Event F1 of (tp, fp, fn)."""
    tp, fp, fn = counts
    return 2 * tp / max(1, 2 * tp + fp + fn)


def score(runs_probabilities, **rule):
    """Event F1, (tp, fp, fn), false events per balloon-free run."""
    tp = fp = fn = free = free_false = 0
    for p, meta in runs_probabilities:
        truth = [tuple(e) for e in meta['events']]
        found = events_of(np.asarray(p), **rule)
        pairs = sorted(((iou(a, b), t, q) for t, a in enumerate(truth) for q, b in enumerate(found) if iou(a, b) >= 0.5), reverse=True)
        used_t, used_q = set(), set()
        for _, t, q in pairs:
            if t not in used_t and q not in used_q:
                used_t.add(t)
                used_q.add(q)
        tp += len(used_t)
        fp += len(found) - len(used_q)
        fn += len(truth) - len(used_t)
        if not truth:
            free += 1
            free_false += len(found)
    return f1_of((tp, fp, fn)), (tp, fp, fn), free_false / max(1, free)
