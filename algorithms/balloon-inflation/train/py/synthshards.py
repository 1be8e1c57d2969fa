"""Training shards (as gen.py train writes them) from `@arteria/synth` runs written by
`node train/dist/synth-set.js train FOLDER`: the detector learns from a second generator's
runs beside train/py's, so that it does not fit one generator's look.

`synthshards.py FOLDER OUT`: shards named shard-synth-*.npz in OUT."""
import glob
import json
import os
import sys

import numpy as np

from prep import normalize

SHARD = 6


def main():
    folder, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    names = sorted(p[:-5] for p in glob.glob(f'{folder}/*.json'))
    for s0 in range(0, len(names), SHARD):
        xs, vis, frac, lengths, metas, centres = [], [], [], [], [], []
        for n in names[s0: s0 + SHARD]:
            meta = json.load(open(n + '.json'))
            frames = np.fromfile(n + '.u16', '<u2').reshape(meta['frames'], meta['size'], meta['size'])
            xs.append(normalize(frames, meta['photometric']).astype(np.float16))
            vis.append(np.array(meta.pop('visible'), bool))
            frac.append(np.array(meta.pop('fill'), np.float32))
            centres.append(np.array(meta.pop('centres'), np.float32))
            lengths.append(meta['frames'])
            # Its dose is relative, not in photons as train.load reads a run's dose.
            meta['relativeDose'] = meta.pop('dose')
            metas.append(meta)
        tmp = os.path.join(out, f'shard-synth-{s0:06d}.tmp.npz')
        np.savez(tmp, x=np.concatenate(xs), visible=np.concatenate(vis), frac=np.concatenate(frac),
                 lengths=np.array(lengths), centres=np.concatenate(centres), meta=json.dumps(metas))
        os.replace(tmp, tmp.replace('.tmp.npz', '.npz'))
    print(f'{len(names)} runs in {(len(names) + SHARD - 1) // SHARD} shards', flush=True)


if __name__ == '__main__':
    main()
