"""Writes test/fixtures/prep-*: a small non-square MONOCHROME1 12-bit run with shutters and
what prep.py makes of it (more frames than set the reference), so that a test holds src/preprocess.ts to the same arithmetic."""
import gzip
import json
import os
import sys
import warnings

import numpy as np

from prep import preprocess
from profiles import TRAIN
from run import render_run

warnings.filterwarnings('ignore')
out = sys.argv[1]
# More frames than prep.REFERENCE_FRAMES: the reference is settled, then later frames follow.
FRAMES = 11
frames, meta, _, _ = render_run(4242, TRAIN, 'inflation')
frames = frames[:FRAMES, :136, :200] if frames.shape[2] >= 200 else np.pad(frames[:FRAMES, :136], ((0, 0), (0, 0), (0, 200 - frames.shape[2])), mode='edge')
frames = (4095 - np.clip(frames.astype(np.int64) * 4095 // max(1, frames.max()), 0, 4095)).astype('<u2')
x = preprocess(frames, 'MONOCHROME1')
rng = np.random.default_rng(1)
idx = np.sort(rng.choice(x.size, 4000, replace=False))
with gzip.open(os.path.join(out, 'prep-run.u16.gz'), 'wb') as fh:
    fh.write(frames.tobytes())
with open(os.path.join(out, 'prep-expected.json'), 'w') as fh:
    json.dump({'frames': int(frames.shape[0]), 'rows': int(frames.shape[1]), 'columns': int(frames.shape[2]), 'bitsStored': 12,
               'photometric': 'MONOCHROME1', 'indices': idx.tolist(), 'values': [round(float(v), 5) for v in x.ravel()[idx]]}, fh)
