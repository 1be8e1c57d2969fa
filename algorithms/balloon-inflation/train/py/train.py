"""Trains the detector on shards written by gen.py and exports ONNX.

`train.py DATA OUT_ONNX SECONDS`: a fully convolutional per-frame CNN over
[frames, 3, 128, 128] (prep.py: the normalized frame, its difference from the reference of
the run's first frames, and the same for the mean of the last three frames) whose 8x8 map of
logits is max-pooled: per frame, the probability that a balloon is visible and that it is
inflated, for any number of frames. It trains on 64x64 crops (around the balloon most of the
time), which the max pooling makes the same detector as on whole frames, and in a share
BALLOON_WHOLE of the steps on 16 whole frames (the context a crop leaves out). BALLOON_ARCH=deep
adds a third stride-2 stage (a larger receptive field); BALLOON_WIDTH multiplies every
convolution's channels (continued from a narrower export, it starts from what that computed).

Every five minutes it writes a checkpoint (BALLOON_CHECKPOINT) and exports the exponential
moving average of the weights to OUT_ONNX, so that training can be stopped at any time.
BALLOON_INIT continues from a checkpoint; BALLOON_INIT_ONNX starts from an exported model
(its convolutions; a model with fewer input channels gets zero weights for the others).

3.2.0's recipe (train.sh) continues from 3.1.0's weights, 1.5 times as wide, at BALLOON_LR 1e-3 with BALLOON_HARD 3,
on train/py's runs and `@arteria/synth` runs (synthshards.py) in the same DATA folder.

Switches tried after 3.0.0 against where it failed, none of which did better on the
validation split on its own (MODEL_CARD.md has the figures; off by default). A balloon
inflated from the first frames on is in the reference, so the difference channels are blank over the whole inflation: in a share BALLOON_REF_SHIFT of the
crops the reference is the median of 8 consecutive frames taken anywhere in the run, inflated
ones included, so that the network must also read the balloon in the frame itself. Long
inflations and low-dose runs, the two kinds it missed most, are drawn BALLOON_HARD times as
often as other runs. BALLOON_WHOLE and BALLOON_ARCH as above.

BALLOON_VALIDATION=FOLDER (`gen.py validation FOLDER 0 180`; several folders separated by ':',
e.g. also `@arteria/synth` runs from `synth-set.js check`) scores the event F1 of the moving
average on the validation runs at every export (valevents.py; over all folders together),
exports OUT_ONNX only when it is the best so far and keeps that checkpoint as
BALLOON_CHECKPOINT.best (BALLOON_BEST_ONNX: the same, mirror-averaged). The held-out set is never read here."""
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from prep import CHANNELS, MEAN_FRAMES, REFERENCE_FRAMES, SIDE, prepared

torch.set_num_threads(int(os.environ.get('BALLOON_THREADS', '1')))
torch.manual_seed(0)
CHECKPOINT = os.environ.get('BALLOON_CHECKPOINT', '/tmp/balloon-inflation-detector.pt')
REF_SHIFT = float(os.environ.get('BALLOON_REF_SHIFT', '0'))
HARD = float(os.environ.get('BALLOON_HARD', '1'))
# 'base': 3.0.0's network (8x8 map of logits); 'deep': two more convolutions, one of stride 2 (4x4 map).
ARCH = os.environ.get('BALLOON_ARCH', 'base')
WHOLE = float(os.environ.get('BALLOON_WHOLE', '0'))
# Channels of every convolution times BALLOON_WIDTH (1: 3.0.0's network). A wider network continued from a
# narrower export computes what it did at first (init_from_onnx), and learns with the channels it gained.
WIDTH = float(os.environ.get('BALLOON_WIDTH', '1'))


class Detector(nn.Module):
    def __init__(self, width=WIDTH):
        super().__init__()

        def block(i, o, k, s):
            return [nn.Conv2d(i, o, k, s, (k - 1) // 2 if k == 3 else 0, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        c16, c32, c48, c64 = (round(c * width) for c in (16, 32, 48, 64))
        layers = [*block(CHANNELS, c16, 4, 4), *block(c16, c32, 3, 2), *block(c32, c32, 3, 1), *block(c32, c48, 3, 2), *block(c48, c48, 3, 1)]
        if ARCH == 'deep':
            # A third stride-2 stage: a 4x4 map of logits whose cells see about 140 px of the 128 (the whole
            # frame) instead of 76, the balloon with its surroundings at any marker spacing.
            layers += [*block(c48, c64, 3, 2), *block(c64, c64, 3, 1)]
        self.cnn = nn.Sequential(*layers, nn.Conv2d(layers[-3].out_channels, 2, 1))

    def forward(self, frames):
        """[T, CHANNELS, 128, 128] -> [T, 2]: per frame, probability that a balloon is visible and that it is inflated."""
        logits = torch.amax(self.cnn(frames), dim=(2, 3))
        return torch.sigmoid(logits)


def width_of(path):
    """The BALLOON_WIDTH of an export (.onnx) or a checkpoint, read off its stem's channels."""
    if path.endswith('.onnx'):
        import onnx
        from onnx import numpy_helper
        graph = onnx.load(path).graph
        stem = next(n for n in graph.node if n.op_type == 'Conv')
        channels = next(numpy_helper.to_array(i) for i in graph.initializer if i.name == stem.input[1]).shape[0]
    else:
        channels = torch.load(path)['ema']['cnn.0.weight'].shape[0]
    return channels / 16


def init_from_onnx(model, path):
    """Convolution weights from an exported model (batch normalization folded into them): each
    folded convolution's weight goes to the convolution, its bias to the batch normalization.
    Into a wider model (BALLOON_WIDTH): the channels it gains keep their random weights, and the
    exported channels get zero weights from them, so that the model computes what the export did."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == 'Conv']
    layers = [m for m in model.cnn if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.cnn if isinstance(m, nn.BatchNorm2d)]
    if len(convs) == 4 * len(layers):
        # A mirror-averaged export (export.py --flips): its first branch is the unmirrored network.
        convs = convs[: len(layers)]
    assert len(convs) == len(layers), f'{len(convs)} convolutions in {path}, {len(layers)} in the model'
    with torch.no_grad():
        for i, (node, layer) in enumerate(zip(convs, layers)):
            w = torch.from_numpy(inits[node.input[1]].copy())
            b = torch.from_numpy(inits[node.input[2]].copy()) if len(node.input) > 2 else torch.zeros(w.shape[0])
            out, inp = w.shape[0], w.shape[1]
            assert out <= layer.weight.shape[0], f'{path} is wider than the model (width_of gives its width)'
            layer.weight[:out] = 0
            layer.weight[:out, :inp] = w
            if i < len(norms):
                norms[i].bias.zero_()
                norms[i].bias[:out] = b
            else:
                layer.bias.copy_(b)
    print(f'initialized from {path}', flush=True)


def calibrate(model, inp):
    """After init_from_onnx: each batch normalization scaled back by the batch's own
    statistics, so that in training it gives what the folded convolution gave."""
    with torch.no_grad():
        h = inp
        for m in model.cnn:
            if isinstance(m, nn.BatchNorm2d):
                mean = h.mean(dim=(0, 2, 3))
                std = (h.var(dim=(0, 2, 3), unbiased=False) + m.eps).sqrt()
                m.weight.copy_(std)
                m.bias.add_(mean)
                m.running_mean.copy_(mean)
                m.running_var.copy_(std * std - m.eps)
                h = h + (m.bias - mean)[None, :, None, None]
            else:
                h = m(h)


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
        metas = json.loads(str(z['meta']))
        off = 0
        for n, meta in zip(z['lengths'], metas):
            x = prepared(z['x'][off: off + n]).astype(np.float16)
            k = min(n, REFERENCE_FRAMES)
            ref = np.sort(x[:k].astype(np.float32), axis=0)[(k - 1) // 2]
            vis, frac = z['visible'][off: off + n], z['frac'][off: off + n]
            # Inflated for over half of the run, or drawn from the lowest dose decade (profiles.TRAIN_LOW_DOSE:
            # the description's dose is per 128-grid pixel times (size / 128)^2).
            # Runs of another generator (synthshards.py) have no dose in photons: only a long inflation makes them hard.
            low_dose = meta.get('dose') is not None and meta['dose'] < 3000 * (meta['size'] / 128.0) ** 2
            hard = ((frac >= 0.5) & vis).mean() > 0.5 or low_dose
            runs.append((x, ref, vis, frac, z['centres'][off: off + n], HARD if hard else 1.0))
            off += n
        _loaded[path] = runs[first:]
    return runs


# Crops are half the frame's side; centres (stored on the 128 grid) and the margins below scale with it.
CROP = SIDE // 2
SCALE = SIDE / 128.0
# A crop around the balloon puts its centre this far inside the crop at least; the centre is
# `inside` past INSIDE of the crop's edges, and on the EDGE band around them its labels get no weight.
AROUND, INSIDE, EDGE = 14 * SCALE, 10 * SCALE, 6 * SCALE


def crop_of(run, rng, crop=CROP):
    """A square crop (side `crop`; SIDE: the whole frame) of one frame's input, around the balloon most of the time, with its labels and weight."""
    x, ref, vis, frac, centres, _ = run
    f = int(rng.integers(0, len(x)))
    cx, cy = centres[f] * SCALE
    if vis[f] and rng.random() < 0.7:
        x0 = int(np.clip(cx - rng.uniform(AROUND, crop - AROUND), 0, SIDE - crop))
        y0 = int(np.clip(cy - rng.uniform(AROUND, crop - AROUND), 0, SIDE - crop))
    else:
        x0, y0 = int(rng.integers(0, SIDE - crop + 1)), int(rng.integers(0, SIDE - crop + 1))
    u, v = cx - x0, cy - y0
    inside = vis[f] and (crop == SIDE or (INSIDE <= u < crop - INSIDE and INSIDE <= v < crop - INSIDE))
    edge = vis[f] and not inside and -EDGE <= u < crop + EDGE and -EDGE <= v < crop + EDGE
    lo = max(0, f - MEAN_FRAMES + 1)
    recent = x[lo: f + 1, y0: y0 + crop, x0: x0 + crop].astype(np.float32)
    r = ref[y0: y0 + crop, x0: x0 + crop]
    if len(x) > REFERENCE_FRAMES and rng.random() < REF_SHIFT:
        # A reference that may hold the inflated balloon: the frame itself must show it (BALLOON_REF_SHIFT).
        s = int(rng.integers(0, len(x) - REFERENCE_FRAMES + 1))
        window = np.sort(x[s: s + REFERENCE_FRAMES, y0: y0 + crop, x0: x0 + crop].astype(np.float32), axis=0)
        r = window[(REFERENCE_FRAMES - 1) // 2]
    if rng.random() < 0.3:
        # Less dose than rendered: independent noise per frame (the reference, a median of several, keeps less of it).
        recent = recent + rng.normal(0, rng.uniform(0.02, 0.2), recent.shape).astype(np.float32)
    a = recent[-1]
    inp = np.stack([a, a - r, recent.mean(axis=0) - r])
    if rng.random() < 0.5:
        # Another normalization: scale and offset of the whole input (differences only scale).
        s = rng.uniform(0.8, 1.25)
        inp = inp * s
        inp[0] += rng.uniform(-0.3, 0.3)
    k = int(rng.integers(0, 4))
    inp = np.rot90(inp, k, axes=(1, 2))
    if rng.random() < 0.5:
        inp = inp[:, :, ::-1]
    labels = np.array([float(inside), float(inside and frac[f] >= 0.5)], np.float32)
    weight = np.array([0.0 if edge else 1.0, 0.0 if edge else (0.3 if 0.25 < frac[f] < 0.75 else 1.0)], np.float32)
    return np.ascontiguousarray(inp, dtype=np.float32), labels, weight


def export(model, path):
    model.eval()
    dummy = torch.zeros(8, CHANNELS, SIDE, SIDE)
    tmp = path + '.tmp'
    torch.onnx.export(model, dummy, tmp, input_names=['frames'], output_names=['probabilities'],
                      dynamic_axes={'frames': {0: 'frames'}, 'probabilities': {0: 'frames'}}, opset_version=13)
    os.replace(tmp, path)


def main():
    data, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rng = np.random.default_rng(int(os.environ.get('BALLOON_SEED', '1')))
    model = Detector()
    lr = float(os.environ.get('BALLOON_LR', '3e-3'))
    if os.environ.get('BALLOON_INIT'):
        model.load_state_dict(torch.load(os.environ['BALLOON_INIT'])['model'])
    elif os.environ.get('BALLOON_INIT_ONNX'):
        init_from_onnx(model, os.environ['BALLOON_INIT_ONNX'])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    runs = load(data)
    val, train = runs[:12], runs[12:]
    draw = drawing(train)
    print(f'{len(train)} training runs', flush=True)
    events = None
    if os.environ.get('BALLOON_VALIDATION'):
        from valevents import event_score, validation_runs
        from valscore import f1_of
        # Folders separated by ':' (the validation split, and runs of another generator: synth-set.js check).
        events = [(folder, validation_runs(folder)) for folder in os.environ['BALLOON_VALIDATION'].split(':')]
    best = -1.0
    if os.environ.get('BALLOON_INIT_ONNX') and not os.environ.get('BALLOON_INIT'):
        calibrate(model, torch.from_numpy(np.stack([crop_of(train[int(rng.integers(0, len(train)))], rng)[0] for _ in range(256)])))
    ema = Detector()
    ema.load_state_dict(model.state_dict())
    ema.eval()
    validate(ema, val)
    start = time.time()
    last_reload = last_export = start
    step = 0
    bce = nn.BCELoss(reduction='none')

    def save():
        nonlocal best
        validate(ema, val)
        torch.save({'model': model.state_dict(), 'ema': ema.state_dict(), 'step': step}, CHECKPOINT + '.tmp')
        os.replace(CHECKPOINT + '.tmp', CHECKPOINT)
        if events is not None:
            total = np.zeros(3, int)
            for folder, runs in events:
                f1, counts, free = event_score(ema, runs)
                total += counts
                print(f'validation events at step {step} in {folder}: F1 {f1:.3f} (tp, fp, fn) {counts}, {free:.3f} per balloon-free run', flush=True)
            # The weights are chosen by the event F1 over all the folders together.
            f1 = f1_of(total)
            print(f'validation events at step {step}: F1 {f1:.3f} over all', flush=True)
            if f1 <= best:
                return
            best = f1
            torch.save({'model': model.state_dict(), 'ema': ema.state_dict(), 'step': step}, CHECKPOINT + '.best')
            if os.environ.get('BALLOON_BEST_ONNX'):
                from export import Flips
                export(Flips(ema), os.environ['BALLOON_BEST_ONNX'])
        export(ema, out)
        print(f'exported at step {step}, {time.time() - start:.0f}s', flush=True)

    while time.time() - start < seconds:
        if time.time() - last_reload > 180:
            runs = load(data)
            val, train = runs[:12], runs[12:]
            draw = drawing(train)
            last_reload = time.time()
            print(f'{len(train)} training runs', flush=True)
        done = (time.time() - start) / seconds
        warm = min(1.0, step / 200)
        for g in opt.param_groups:
            g['lr'] = lr * warm * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * done)))
        # A share WHOLE of the steps trains on 16 whole frames (the context a crop leaves out), the others on 64 crops.
        whole = rng.random() < WHOLE
        batch = [crop_of(train[i], rng, SIDE if whole else CROP) for i in rng.choice(len(train), 16 if whole else 64, p=draw)]
        inp = torch.from_numpy(np.stack([b[0] for b in batch]))
        labels = torch.from_numpy(np.stack([b[1] for b in batch]))
        weight = torch.from_numpy(np.stack([b[2] for b in batch]))
        p = model(inp).clamp(1e-5, 1 - 1e-5)
        loss = (bce(p, labels) * weight * torch.tensor([0.5, 1.0])).sum() / weight.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        decay = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
                if e.dtype.is_floating_point:
                    e.mul_(decay).add_(m, alpha=1 - decay)
                else:
                    e.copy_(m)
        if step % 50 == 0:
            print(f'step {step} loss {float(loss):.4f} {time.time() - start:.0f}s', flush=True)
        if time.time() - last_export > 300:
            save()
            last_export = time.time()
    save()
    print(json.dumps({'steps': step, 'seconds': round(time.time() - start)}), flush=True)


def drawing(train):
    """How often each training run is drawn: the hard kinds (load) BALLOON_HARD times as often."""
    w = np.array([run[5] for run in train])
    return w / w.sum()


def validate(model, val):
    model.eval()
    right = seen = total = 0
    tp = fp = fn = 0
    with torch.no_grad():
        for x, ref, vis, frac, _, _ in val:
            x0 = x.astype(np.float32)
            m = np.stack([x0[max(0, f - MEAN_FRAMES + 1): f + 1].mean(axis=0) for f in range(len(x0))])
            inp = torch.from_numpy(np.stack([x0, x0 - ref[None], m - ref[None]], 1))
            p = model(inp).numpy()
            pred, true = p[:, 1] >= 0.5, (frac >= 0.5) & vis
            right += int((pred == true).sum())
            tp += int((pred & true).sum())
            fp += int((pred & ~true).sum())
            fn += int((~pred & true).sum())
            seen += int(((p[:, 0] >= 0.5) == vis).sum())
            total += len(frac)
    print(f'validation frames: inflated accuracy {right / max(1, total):.3f} (tp {tp} fp {fp} fn {fn}), visible {seen / max(1, total):.3f} on {total} frames', flush=True)


if __name__ == '__main__':
    main()
