"""Event F1 of a per-frame Detector (train.py) on the rendered validation split (`gen.py
validation FOLDER 0 60`), mirror-averaged as export.py --flips exports it and scored with the
shipped event rule (valscore.py), so that train.py keeps the weights that do best on the
tuning split. The normalized frames are cached in FOLDER/normalized.npz (the pre-processing
does not depend on the model). The held-out set is never read here.

`valevents.py FOLDER MODEL.onnx|CHECKPOINT.pt`: the score of an exported model or checkpoint.
`valevents.py FOLDER[:FOLDER...] A B`: both scored with the shipped rule on the runs of all the
folders, and B's event F1 minus A's with a 95 % paired bootstrap interval over the runs
(valscore.paired_difference), so that a new model is compared with the shipped one on more
than its point score."""
import glob
import json
import os
import sys

import numpy as np
import torch

from prep import SIDE, channels, normalize, prepared
from valscore import paired_difference, run_counts, score, summary


def validation_runs(folder):
    """(normalized frames [T, SIDE, SIDE] float16, meta) per run of the folder."""
    names = sorted(p[:-5] for p in glob.glob(f'{folder}/*.json'))
    metas = [json.load(open(n + '.json')) for n in names]
    cache = f'{folder}/normalized.npz' if SIDE == 128 else f'{folder}/normalized-{SIDE}.npz'
    if not os.path.exists(cache):
        out = {}
        for i, (n, m) in enumerate(zip(names, metas)):
            frames = np.fromfile(n + '.u16', '<u2').reshape(m['frames'], m['size'], m['size'])
            out[f'r{i}'] = normalize(frames, m['photometric']).astype(np.float16)
        np.savez(cache + '.tmp.npz', **out)
        os.replace(cache + '.tmp.npz', cache)
    z = np.load(cache)
    return [(z[f'r{i}'], m) for i, m in enumerate(metas)]


def mirrored_outputs(model, runs):
    """Per run, the model's per-frame [visible, inflated] probabilities averaged over each frame
    and its three mirror images, as export.py --flips exports it."""
    model.eval()
    out = []
    with torch.no_grad():
        for x, meta in runs:
            inp = torch.from_numpy(channels(prepared(x)))
            p = sum(model(torch.flip(inp, d) if d else inp) for d in ([], [3], [2], [2, 3])) / 4
            out.append((p.numpy(), meta))
    return out


def inflated_probabilities(model, runs):
    """Per run, the mirror-averaged probability that the balloon is inflated, per frame."""
    return [(p[:, 1], meta) for p, meta in mirrored_outputs(model, runs)]


def event_score(model, runs):
    """(event F1, (tp, fp, fn), false events per balloon-free run) with the shipped rule."""
    return score(inflated_probabilities(model, runs))


def load(path):
    """A model of the width the export or checkpoint has, so that two widths compare in one call."""
    from train import Detector, init_from_onnx, width_of
    model = Detector(width_of(path))
    if path.endswith('.onnx'):
        init_from_onnx(model, path)
    else:
        model.load_state_dict(torch.load(path)[os.environ.get('BALLOON_WEIGHTS', 'ema')])
    return model


def main():
    folders, paths = sys.argv[1].split(':'), sys.argv[2:]
    runs = [run for folder in folders for run in validation_runs(folder)]
    if len(paths) == 2:
        counts = []
        for path in paths:
            counts.append(run_counts(inflated_probabilities(load(path), runs)))
            print(path, summary(counts[-1]))
        difference, low, high = paired_difference(*counts)
        print(f'event F1 of B minus A: {difference:+.3f} (95 % interval {low:+.3f} to {high:+.3f}, {len(runs)} runs resampled)')
        return
    probabilities = inflated_probabilities(load(paths[0]), runs)
    print('shipped rule', score(probabilities))
    for threshold, peak in ((0.5, 0.8), (0.6, 0.9), (0.7, 0.95), (0.8, 0.95)):
        print(f'threshold {threshold} peak {peak}', score(probabilities, threshold=threshold, peak=peak))


if __name__ == '__main__':
    main()
