"""Writes data sets. `gen.py train OUT FIRST COUNT`: shards of normalized runs (prep.normalize,
float16; train.py derives the other channels) with per-frame labels for training. `gen.py heldout|stress|validation OUT FIRST COUNT`: raw
stored frames (uint16 little-endian) and a JSON description per run, for `npm run eval`,
which writes them as DICOM and runs the shipped algorithm on them. `gen.py renderer`: the
numpy and scipy versions this python renders with, as each description records them (the
same seeds give other runs under other versions)."""
import json
import os
import sys
import warnings

import numpy as np
import scipy

from prep import normalize
from profiles import PROFILES, train_profile
from run import render_run

warnings.filterwarnings('ignore')
SEED_BASE = {'train': 1_000_000, 'heldout': 7_000_000, 'stress': 8_000_000, 'validation': 9_000_000}
RENDERER = {'numpy': np.__version__, 'scipy': scipy.__version__}


def main():
    if sys.argv[1:] == ['renderer']:
        print(json.dumps(RENDERER))
        return
    name, out, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    profile = PROFILES[name]
    os.makedirs(out, exist_ok=True)
    if name == 'train':
        shard = 6
        for s0 in range(first, first + count, shard):
            xs, vis, frac, lengths, metas, centres = [], [], [], [], [], []
            for i in range(s0, min(s0 + shard, first + count)):
                frames, meta, visible, fr = render_run(SEED_BASE[name] + i, *train_profile(i))
                x = normalize(frames, meta['photometric'])
                xs.append(x.astype(np.float16))
                vis.append(visible)
                frac.append(fr.astype(np.float32))
                lengths.append(len(x))
                centres.append(np.array(meta.pop('centres'), np.float32))
                metas.append({**meta, 'renderer': RENDERER})
            np.savez(os.path.join(out, f'shard-{s0:06d}.tmp.npz'), x=np.concatenate(xs), visible=np.concatenate(vis),
                     frac=np.concatenate(frac), lengths=np.array(lengths), centres=np.concatenate(centres), meta=json.dumps(metas))
            os.replace(os.path.join(out, f'shard-{s0:06d}.tmp.npz'), os.path.join(out, f'shard-{s0:06d}.npz'))
            print('shard', s0, flush=True)
        return
    for i in range(first, first + count):
        frames, meta, visible, fr = render_run(SEED_BASE[name] + i, profile)
        base = os.path.join(out, f'{name}-{i:04d}')
        frames.astype('<u2').tofile(base + '.u16')
        meta['visibleFrames'] = int(visible.sum())
        meta['visible'] = visible.astype(int).tolist()
        meta.pop('centres')
        meta['renderer'] = RENDERER
        with open(base + '.json', 'w') as fh:
            json.dump(meta, fh)
        print('run', i, meta['kind'], flush=True)


if __name__ == '__main__':
    main()
