"""Trains the detector on shards written by gen.py and exports ONNX.

`train.py DATA OUT_ONNX SECONDS`: a fully convolutional per-frame CNN over
[frames, 2, 128, 128] (normalized frame, difference from the run's temporal median) whose
8x8 map of logits is max-pooled: per frame, the probability that a balloon is visible and
that it is inflated, for any number of frames. It trains on 64x64 crops (around the balloon
most of the time), which the max pooling makes the same detector as on whole frames."""
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

torch.set_num_threads(1)
torch.manual_seed(0)
CHECKPOINT = os.environ.get('BALLOON_CHECKPOINT', '/tmp/balloon-inflation-detector.pt')


class Detector(nn.Module):
    def __init__(self):
        super().__init__()

        def block(i, o, k, s):
            return [nn.Conv2d(i, o, k, s, (k - 1) // 2 if k == 3 else 0, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.cnn = nn.Sequential(*block(2, 16, 4, 4), *block(16, 32, 3, 2), *block(32, 32, 3, 1),
                                 *block(32, 48, 3, 2), *block(48, 48, 3, 1), nn.Conv2d(48, 2, 1))

    def forward(self, frames):
        """[T, 2, 128, 128] -> [T, 2]: per frame, probability that a balloon is visible and that it is inflated."""
        logits = torch.amax(self.cnn(frames), dim=(2, 3))
        return torch.sigmoid(logits)


_loaded = {}


def load(data):
    runs = []
    for path in sorted(glob.glob(f'{data}/shard-*.npz')):
        if '.tmp.' in path:
            continue
        if path in _loaded:
            runs.extend(_loaded[path])
            continue
        first = len(runs)
        z = np.load(path)
        off = 0
        for n in z['lengths']:
            x = z['x'][off: off + n]
            med = np.sort(x.astype(np.float32), axis=0)[(n - 1) // 2]
            runs.append((x, med.astype(np.float16), z['visible'][off: off + n], z['frac'][off: off + n], z['centres'][off: off + n]))
            off += n
        _loaded[path] = runs[first:]
    return runs


CROP = 64


def crop_of(run, rng):
    """A 64x64 crop of one frame, around the balloon most of the time, with its labels and weight."""
    x, med, vis, frac, centres = run
    f = int(rng.integers(0, len(x)))
    cx, cy = centres[f]
    if vis[f] and rng.random() < 0.7:
        x0 = int(np.clip(cx - rng.uniform(14, CROP - 14), 0, 128 - CROP))
        y0 = int(np.clip(cy - rng.uniform(14, CROP - 14), 0, 128 - CROP))
    else:
        x0, y0 = int(rng.integers(0, 128 - CROP + 1)), int(rng.integers(0, 128 - CROP + 1))
    u, v = cx - x0, cy - y0
    inside = vis[f] and 10 <= u < CROP - 10 and 10 <= v < CROP - 10
    edge = vis[f] and not inside and -6 <= u < CROP + 6 and -6 <= v < CROP + 6
    a = x[f, y0: y0 + CROP, x0: x0 + CROP].astype(np.float32)
    inp = np.stack([a, a - med[y0: y0 + CROP, x0: x0 + CROP].astype(np.float32)])
    k = int(rng.integers(0, 4))
    inp = np.rot90(inp, k, axes=(1, 2))
    if rng.random() < 0.5:
        inp = inp[:, :, ::-1]
    labels = np.array([float(inside), float(inside and frac[f] >= 0.5)], np.float32)
    weight = np.array([0.0 if edge else 1.0, 0.0 if edge else (0.3 if 0.25 < frac[f] < 0.75 else 1.0)], np.float32)
    return np.ascontiguousarray(inp), labels, weight


def export(model, path):
    model.eval()
    dummy = torch.zeros(8, 2, 128, 128)
    torch.onnx.export(model, dummy, path, input_names=['frames'], output_names=['probabilities'],
                      dynamic_axes={'frames': {0: 'frames'}, 'probabilities': {0: 'frames'}}, opset_version=13)
    model.train()


def main():
    data, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rng = np.random.default_rng(1)
    model = Detector()
    lr = float(os.environ.get('BALLOON_LR', '3e-3'))
    if os.environ.get('BALLOON_INIT'):
        # Continue from an earlier checkpoint (more data, lower rate).
        model.load_state_dict(torch.load(os.environ['BALLOON_INIT']))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    runs = load(data)
    val, train = runs[:12], runs[12:]
    print(f'{len(train)} training runs', flush=True)
    start = time.time()
    last_reload = last_export = start
    step = 0
    bce = nn.BCELoss(reduction='none')
    while time.time() - start < seconds:
        if time.time() - last_reload > 180:
            runs = load(data)
            val, train = runs[:12], runs[12:]
            last_reload = time.time()
            print(f'{len(train)} training runs', flush=True)
        done = (time.time() - start) / seconds
        for g in opt.param_groups:
            g['lr'] = lr * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * done)))
        batch = [crop_of(train[int(rng.integers(0, len(train)))], rng) for _ in range(64)]
        inp = torch.from_numpy(np.stack([b[0] for b in batch]))
        inp = inp + torch.randn(len(batch), 1, 1, 1) * 0.05
        labels = torch.from_numpy(np.stack([b[1] for b in batch]))
        weight = torch.from_numpy(np.stack([b[2] for b in batch]))
        p = model(inp).clamp(1e-5, 1 - 1e-5)
        loss = (bce(p, labels) * weight * torch.tensor([0.5, 1.0])).sum() / weight.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            print(f'step {step} loss {float(loss):.4f} {time.time() - start:.0f}s', flush=True)
        if time.time() - last_export > 300:
            validate(model, val)
            export(model, out)
            torch.save(model.state_dict(), CHECKPOINT)
            last_export = time.time()
    validate(model, val)
    export(model, out)
    torch.save(model.state_dict(), CHECKPOINT)
    print(json.dumps({'steps': step, 'seconds': round(time.time() - start)}), flush=True)


def validate(model, val):
    model.eval()
    right = seen = total = 0
    with torch.no_grad():
        for x, med, vis, frac, _ in val:
            x0 = x.astype(np.float32)
            inp = torch.from_numpy(np.stack([x0, x0 - med.astype(np.float32)[None]], 1))
            p = model(inp).numpy()
            right += int(((p[:, 1] >= 0.5) == (frac >= 0.5)).sum())
            seen += int(((p[:, 0] >= 0.5) == vis).sum())
            total += len(frac)
    model.train()
    print(f'validation frame accuracy: inflated {right / max(1, total):.3f}, visible {seen / max(1, total):.3f} on {total} frames', flush=True)


if __name__ == '__main__':
    main()
