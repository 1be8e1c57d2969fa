"""The temporal stage: a small GRU over the per-frame network's features, trained on whole runs.
Tried after 3.0.0 and not shipped (MODEL_CARD.md: better on the validation split, worse on the
held-out set); the algorithm runs 3.0.0's per-frame model, which has no `memory` input.

`temporal.py DATA FRAME_ONNX OUT_ONNX SECONDS`: the per-frame network of FRAME_ONNX (a
mirror-averaged export of train.py's Detector, e.g. the shipped 3.0.0 model) is run on every
frame of the runs in DATA (shards written by `gen.py train`); per frame it gives FEATURES
values, averaged over the frame and its three mirror images: the max- and mean-pooled
penultimate map (48 + 48), the max and mean of the 8x8 logit map (2 + 2) and the frame's
probabilities (2, what FRAME_ONNX reports). The features are cached beside each shard
(features-*.npz). A GRU then reads them in frame order, from the first frame of the run, and
gives per frame the probability that a balloon is visible and that it is inflated: it sees how
the run went so far, which one frame alone does not show. It is causal: a frame's output needs
no later frame, so an algorithm can keep the GRU's state (HIDDEN floats) between the segments
of a run.

The exported model (OUT_ONNX, opset 13) is one graph: inputs `frames` [N, 3, 128, 128] and
`memory` [1, 1, HIDDEN] (zeros at the start of a run), outputs `probabilities` [N, 2] and
`memory_out` [1, 1, HIDDEN] (the state after the N frames). The per-frame network's weights
are frozen: only the GRU and its input and output layers are trained (minutes on a CPU).
Runs the per-frame network never trained on should be used (`gen.py train DATA 3000 480`:
other seeds than train.sh's), so that their features are as good as on unseen runs.
BALLOON_VALIDATION=FOLDER (`gen.py validation FOLDER 0 60`) keeps the weights of the best
event F1 on the validation split (valscore.py); BALLOON_DROPOUT, BALLOON_LR,
BALLOON_FIRST_FEATURE (96: only the logits and probabilities) and BALLOON_RESIDUAL (the GRU
corrects the per-frame logits, starting from zero) are the variants MODEL_CARD.md reports.
The run MODEL_CARD.md reports: BALLOON_VALIDATION set, the defaults otherwise, 300 s."""
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from prep import CHANNELS, MEAN_FRAMES, REFERENCE_FRAMES
from train import Detector, init_from_onnx
from valscore import score, validation_features

torch.set_num_threads(int(os.environ.get('BALLOON_THREADS', '1')))
torch.manual_seed(0)
FEATURES = 48 + 48 + 2 + 2 + 2
HIDDEN = 32
# Few training runs (hundreds) for 102 features a frame: dropout on the features, feature noise,
# weight decay, and the weights kept where the frame F1 of runs set aside was best.
DROPOUT = float(os.environ.get('BALLOON_DROPOUT', '0.2'))
# The GRU reads the features from this one on: 0 all, FEATURES - 6 only the logits and probabilities.
FIRST = int(os.environ.get('BALLOON_FIRST_FEATURE', '0'))
# Residual: the GRU's output is added to the logits of the per-frame probabilities (the last two
# features) and starts at zero, so that training starts from the per-frame answer.
RESIDUAL = os.environ.get('BALLOON_RESIDUAL', '0') == '1'


class FrameFeatures(nn.Module):
    """[N, CHANNELS, 128, 128] -> [N, FEATURES], averaged over the frame and its mirror images."""

    def __init__(self, detector):
        super().__init__()
        self.body = detector.cnn[:-1]
        self.head = detector.cnn[-1]

    def one(self, frames):
        h = self.body(frames)
        logits = self.head(h)
        lmax = torch.amax(logits, dim=(2, 3))
        return torch.cat([torch.amax(h, dim=(2, 3)), torch.mean(h, dim=(2, 3)), lmax, torch.mean(logits, dim=(2, 3)), torch.sigmoid(lmax)], 1)

    def forward(self, frames):
        outs = [self.one(frames), self.one(torch.flip(frames, [3])), self.one(torch.flip(frames, [2])), self.one(torch.flip(frames, [2, 3]))]
        return (outs[0] + outs[1] + outs[2] + outs[3]) / 4


class Temporal(nn.Module):
    """Features of consecutive frames [N, FEATURES] and the state [1, 1, HIDDEN] -> logits [N, 2] and the next state."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer('mean', torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer('std', torch.as_tensor(std, dtype=torch.float32))
        self.inp = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(FEATURES - FIRST, HIDDEN), nn.ReLU())
        self.gru = nn.GRU(HIDDEN, HIDDEN)
        self.out = nn.Linear(2 * HIDDEN, 2)
        if RESIDUAL:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, feats, memory):
        """feats [T, B, FEATURES], memory [1, B, HIDDEN] -> logits [T, B, 2], memory."""
        z = self.inp(((feats - self.mean) / self.std)[..., FIRST:])
        h, memory = self.gru(z, memory)
        out = self.out(torch.cat([h, z], 2))
        if RESIDUAL:
            p = feats[..., FEATURES - 2:].clamp(1e-4, 1 - 1e-4)
            out = out + torch.log(p) - torch.log1p(-p)
        return out, memory


class Merged(nn.Module):
    def __init__(self, frames, temporal):
        super().__init__()
        self.frames = frames
        self.temporal = temporal

    def forward(self, frames, memory):
        logits, memory = self.temporal(self.frames(frames)[:, None], memory)
        return torch.sigmoid(logits[:, 0]), memory


def runs_of(path):
    """(input [T, CHANNELS, 128, 128] float32, visible, frac) per run of a shard, as train.py reads them."""
    z = np.load(path)
    off = 0
    for n in z['lengths']:
        x = z['x'][off: off + n].astype(np.float32)
        k = min(n, REFERENCE_FRAMES)
        ref = np.sort(x[:k], axis=0)[(k - 1) // 2]
        m = np.stack([x[max(0, f - MEAN_FRAMES + 1): f + 1].astype(np.float64).mean(axis=0) for f in range(n)]).astype(np.float32)
        yield np.stack([x, x - ref[None], m - ref[None]], 1), z['visible'][off: off + n], z['frac'][off: off + n]
        off += n


def features(data, frame_net):
    """Per-frame features, labels and run lengths of every shard in data (each cached beside its shard)."""
    fs, vis, frac, lengths = [], [], [], []
    start = time.time()
    for path in sorted(glob.glob(f'{data}/shard-*.npz')):
        if '.tmp.' in path:
            continue
        cache = path.replace('shard-', 'features-')
        if not os.path.exists(cache):
            with torch.no_grad():
                parts = [(frame_net(torch.from_numpy(inp)).numpy(), v, fr) for inp, v, fr in runs_of(path)]
            np.savez(cache, f=np.concatenate([p[0] for p in parts]), visible=np.concatenate([p[1] for p in parts]),
                     frac=np.concatenate([p[2] for p in parts]), lengths=np.array([len(p[0]) for p in parts]))
            print(f'features of {os.path.basename(path)}, {time.time() - start:.0f}s', flush=True)
        z = np.load(cache)
        fs.append(z['f'])
        vis.append(z['visible'])
        frac.append(z['frac'])
        lengths.append(z['lengths'])
    return np.concatenate(fs), np.concatenate(vis), np.concatenate(frac), np.concatenate(lengths)


VALIDATION = []


def batch_of(runs, idx, rng, augment):
    """Padded [T, B, FEATURES] features, labels, weights (0 on padding) for the runs idx."""
    seqs = []
    for i in idx:
        f, v, fr = runs[i]
        if augment and rng.random() < 0.25:
            # A lower frame rate: every second frame (the reference frames stay the first ones).
            f, v, fr = f[::2], v[::2], fr[::2]
        seqs.append((f, v, fr))
    t = max(len(s[0]) for s in seqs)
    x = np.zeros((t, len(seqs), FEATURES), np.float32)
    y = np.zeros((t, len(seqs), 2), np.float32)
    w = np.zeros((t, len(seqs), 2), np.float32)
    for b, (f, v, fr) in enumerate(seqs):
        n = len(f)
        x[:n, b] = f
        y[:n, b, 0] = v
        y[:n, b, 1] = v & (fr >= 0.5)
        w[:n, b, 0] = 0.5
        w[:n, b, 1] = np.where((fr > 0.25) & (fr < 0.75), 0.3, 1.0)
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)


def frame_scores(model, runs):
    """Frame-level F1 of the inflated output on the runs set aside, and its counts."""
    model.eval()
    tp = fp = fn = 0
    with torch.no_grad():
        for f, v, fr in runs:
            logits, _ = model(torch.from_numpy(f)[:, None], torch.zeros(1, 1, HIDDEN))
            pred = torch.sigmoid(logits[:, 0, 1]).numpy() >= 0.5
            true = v & (fr >= 0.5)
            tp += int((pred & true).sum())
            fp += int((pred & ~true).sum())
            fn += int((~pred & true).sum())
    f1 = 2 * tp / max(1, 2 * tp + fp + fn)
    text = f'tp {tp} fp {fp} fn {fn} frame F1 {f1:.3f}'
    if VALIDATION:
        with torch.no_grad():
            probabilities = [(torch.sigmoid(model(torch.from_numpy(f)[:, None], torch.zeros(1, 1, HIDDEN))[0][:, 0, 1]).numpy(), m) for f, m in VALIDATION]
        event_f1, counts, per_free = score(probabilities)
        text += f'; validation event F1 {event_f1:.3f} {counts} {per_free:.3f} per balloon-free run'
        f1 = (event_f1, f1)
    model.train()
    return f1, text


def main():
    data, frame_onnx, out, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    rng = np.random.default_rng(int(os.environ.get('BALLOON_SEED', '1')))
    detector = Detector()
    init_from_onnx(detector, frame_onnx)
    detector.eval()
    frame_net = FrameFeatures(detector).eval()
    global VALIDATION
    if os.environ.get('BALLOON_VALIDATION'):
        # The tuning split (gen.py validation): the weights kept are those of the best event F1 there.
        VALIDATION = validation_features(os.environ['BALLOON_VALIDATION'], frame_net)
    f, vis, frac, lengths = features(data, frame_net)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    runs = [(f[a:b], vis[a:b].astype(bool), frac[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
    held = min(60, len(runs) // 5)
    watch, train = runs[:held], runs[held:]
    print(f'{len(train)} training runs, {len(watch)} to watch, {len(f)} frames', flush=True)
    mean = f.mean(axis=0)
    std = f.std(axis=0) + 1e-3
    model = Temporal(mean, std)
    lr = float(os.environ.get('BALLOON_LR', '3e-3'))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    bce = nn.BCEWithLogitsLoss(reduction='none')
    best, text = frame_scores(model, watch)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    print('start', text, flush=True)
    start = time.time()
    step = 0
    while time.time() - start < seconds:
        done = (time.time() - start) / seconds
        for g in opt.param_groups:
            g['lr'] = lr * min(1.0, step / 100) * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * done)))
        idx = rng.integers(0, len(train), 16)
        x, y, w = batch_of(train, idx, rng, True)
        # Feature noise: the frames of other runs (other sizes, dose, encodings) give less clean features.
        x = x + torch.randn_like(x) * torch.from_numpy(std) * float(rng.uniform(0, 0.5))
        logits, _ = model(x, torch.zeros(1, x.shape[1], HIDDEN))
        loss = (bce(logits, y) * w).sum() / w[..., 1].gt(0).sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            f1, text = frame_scores(model, watch)
            if f1 > best:
                best, best_state = f1, {k: v.clone() for k, v in model.state_dict().items()}
            print(f'step {step} loss {float(loss):.4f} {time.time() - start:.0f}s', text, flush=True)
    f1, text = frame_scores(model, watch)
    if f1 > best:
        best, best_state = f1, model.state_dict()
    model.load_state_dict(best_state)
    print('end', text, f'kept {best}', flush=True)
    torch.save({'temporal': model.state_dict()}, out + '.temporal.pt')
    export(Merged(frame_net, model.eval()).eval(), out)
    print(json.dumps({'steps': step, 'seconds': round(time.time() - start)}), flush=True)


def export(merged, path):
    tmp = path + '.tmp'
    torch.onnx.export(merged, (torch.zeros(8, CHANNELS, 128, 128), torch.zeros(1, 1, HIDDEN)), tmp,
                      input_names=['frames', 'memory'], output_names=['probabilities', 'memory_out'],
                      dynamic_axes={'frames': {0: 'frames'}, 'probabilities': {0: 'frames'}}, opset_version=13)
    os.replace(tmp, path)


if __name__ == '__main__':
    main()
