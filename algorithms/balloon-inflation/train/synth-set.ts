import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EVAL_PROFILE, TRAIN_PROFILE, renderBalloonRun, sampleBalloonRun } from '@arteria/synth';
import type { RunMeta } from './evaluate.js';

/**
 * `node train/dist/synth-set.js check|train FOLDER FIRST COUNT`: runs from `@arteria/synth`,
 * a generator other than train/py's, written like `gen.py validation` writes its runs
 * (stored frames as uint16 little-endian and a JSON description, here with each frame's
 * balloon fill and centre on the 128 grid). `check` (seeds from 60000, its evaluation ranges,
 * 256-768 px) is scored beside the validation split when training chooses its weights;
 * `train` (seeds from 100000, its training ranges, 160-224 px) becomes training shards
 * (py/synthshards.py), so that the detector learns from two generators. No seed is one of
 * the algorithm tests'.
 */
const SETS = {
  check: { seedBase: 60_000, sizes: [256, 384, 512, 768], profile: EVAL_PROFILE },
  train: { seedBase: 100_000, sizes: [160, 192, 224], profile: TRAIN_PROFILE },
} as const;

const [set, folder, firstArg, countArg] = process.argv.slice(2);
if ((set !== 'check' && set !== 'train') || folder === undefined) throw new Error('usage: synth-set.js check|train FOLDER [FIRST] [COUNT]');
const { seedBase, sizes, profile } = SETS[set];
const first = Number(firstArg ?? 0);
const count = Number(countArg ?? 48);
mkdirSync(folder, { recursive: true });
for (let i = first; i < first + count; i++) {
  const seed = seedBase + i;
  const size = sizes[i % sizes.length]!;
  const { kind, options } = sampleBalloonRun({ seed, rows: size, columns: size, profile });
  const { pixels, truth } = renderBalloonRun(options);
  const name = `synth-${String(i).padStart(4, '0')}`;
  const wide = Uint16Array.from(pixels);
  writeFileSync(join(folder, `${name}.u16`), new Uint8Array(wide.buffer, wide.byteOffset, wide.byteLength));
  const inside = (p: { x: number; y: number }): boolean => p.x >= 0 && p.y >= 0 && p.x < size && p.y < size;
  const visible: number[] = truth.perFrame.map((f) => (f.markers !== null && inside(f.markers[0]) && inside(f.markers[1]) ? 1 : 0));
  const fill = truth.perFrame.map((f) => f.fill);
  const centres = truth.perFrame.map((f) => (f.markers === null ? [-1, -1] : [((f.markers[0].x + f.markers[1].x) / 2) * (128 / size), ((f.markers[0].y + f.markers[1].y) / 2) * (128 / size)]));
  const meta: RunMeta & { visible: number[]; fill: number[]; centres: number[][] } = {
    seed,
    kind,
    tags: [kind],
    size,
    frames: options.frames,
    fps: options.frameRateHz,
    bits: options.bitsStored,
    photometric: options.photometric,
    encoding: 'synth',
    inflations: truth.events.length,
    spacing: 0,
    events: truth.events.map((e) => [e.startFrame, e.endFrame]),
    visibleFrames: visible.reduce((a, b) => a + b, 0),
    visible,
    fill,
    centres,
    dose: options.dose,
  };
  writeFileSync(join(folder, `${name}.json`), JSON.stringify(meta));
  console.log(name, kind, size, options.bitsStored, truth.events.length);
}
