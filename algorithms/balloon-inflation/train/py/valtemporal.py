"""Does a temporal stage on a model's outputs help? A small dilated 1-D convolution over each
run's per-frame (visible, inflated) probabilities, with a residual on the inflated logit (so
that it starts by passing the frames through), fitted to the frames inside the true events of
one set of validation runs and scored on another with the shipped event rule and two lower
ones, against the per-frame probabilities (paired bootstrap over the runs).

`valtemporal.py MODEL.onnx|CHECKPOINT.pt FIT_FOLDER[:...] TEST_FOLDER[:...]`. Validation runs
only: the held-out set is never read here."""
import sys

import numpy as np
import torch
from torch import nn

from valevents import load, mirrored_outputs, validation_runs
from valscore import paired_difference, run_counts, summary


def outputs(model, folders):
    """(per-frame [visible, inflated] mirror-averaged, meta) per run of the folders."""
    return [(p.astype(np.float32), meta) for p, meta in mirrored_outputs(model, [run for folder in folders.split(':') for run in validation_runs(folder)])]


def inside_events(meta, n):
    y = np.zeros(n, np.float32)
    for a, b in meta['events']:
        y[a:b + 1] = 1
    return y


class Temporal(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(4, width, 5, padding=2), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=4, dilation=2), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=8, dilation=4), nn.ReLU(),
            nn.Conv1d(width, 1, 1))

    def forward(self, p):
        logit = torch.logit(p.clamp(1e-4, 1 - 1e-4))
        return torch.sigmoid(self.net(torch.cat([p, logit / 5], 1).T[None])[0, 0] + logit[:, 1])


def fitted(fit, width, epochs, weight_decay):
    stage = Temporal(width)
    opt = torch.optim.AdamW(stage.parameters(), 3e-3, weight_decay=weight_decay)
    data = [(torch.from_numpy(p), torch.from_numpy(inside_events(m, len(p)))) for p, m in fit]
    for epoch in range(epochs):
        for i in np.random.default_rng(epoch).permutation(len(data)):
            p, y = data[i]
            loss = nn.functional.binary_cross_entropy(stage(p).clamp(1e-5, 1 - 1e-5), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return stage


def main():
    torch.manual_seed(0)
    model = load(sys.argv[1])
    fit, test = outputs(model, sys.argv[2]), outputs(model, sys.argv[3])
    base = run_counts([(p[:, 1], m) for p, m in test])
    print('per-frame, shipped rule: fit', summary(run_counts([(p[:, 1], m) for p, m in fit])), 'test', summary(base), flush=True)
    for width, epochs, weight_decay in ((8, 20, 1e-3), (16, 30, 1e-2)):
        stage = fitted(fit, width, epochs, weight_decay)
        with torch.no_grad():
            on_test = [(stage(torch.from_numpy(p)).numpy(), m) for p, m in test]
            on_fit = [(stage(torch.from_numpy(p)).numpy(), m) for p, m in fit]
        for threshold, peak in ((0.6, 0.95), (0.5, 0.9), (0.5, 0.8)):
            counts = run_counts(on_test, threshold=threshold, peak=peak)
            difference, low, high = paired_difference(base, counts)
            print(f'width {width}, {epochs} epochs, rule {threshold} / {peak}: fit', summary(run_counts(on_fit, threshold=threshold, peak=peak)),
                  'test', summary(counts), f'against per-frame {difference:+.3f} ({low:+.3f} to {high:+.3f})', flush=True)


if __name__ == '__main__':
    main()
