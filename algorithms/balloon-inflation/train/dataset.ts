import { PATCH_COLUMNS, PATCH_ROWS, prepareRun } from '@arteria/balloon-inflation';
import { renderBalloonRun, sampleBalloonRun, type SampleProfile } from '@arteria/synth';
import { frameStackOf } from './frames.js';

export interface Dataset {
  /** count x PATCH_ROWS*PATCH_COLUMNS. */
  x: Float32Array;
  /** 1 where the balloon is at least half inflated. */
  y: Float32Array;
  runs: number;
  frames: number;
}

export interface DatasetOptions {
  seeds: readonly number[];
  profile: SampleProfile;
  /** Share of runs rendered at twice the working size and binned, as 512x512 runs are. */
  fullSizeShare: number;
  onRun?: (done: number) => void;
}

/**
 * Patches and labels from synthetic runs, through the same pre-processing as inference.
 * Frames where no marker pair is found give no patch (the algorithm scores them 0).
 */
export function buildDataset({ seeds, profile, fullSizeShare, onRun }: DatasetOptions): Dataset {
  const size = PATCH_ROWS * PATCH_COLUMNS;
  const xs: Float32Array[] = [];
  const ys: number[] = [];
  let frames = 0;
  seeds.forEach((seed, i) => {
    const side = (seed % 1000) / 1000 < fullSizeShare ? 512 : 256;
    const { options } = sampleBalloonRun({ seed, rows: side, columns: side, profile });
    const run = renderBalloonRun(options);
    const prepared = prepareRun(frameStackOf(run));
    xs.push(prepared.patches);
    for (const f of prepared.patchFrames) ys.push(run.truth.perFrame[f]!.inflated ? 1 : 0);
    frames += options.frames;
    onRun?.(i + 1);
  });
  const x = new Float32Array(ys.length * size);
  let offset = 0;
  for (const part of xs) {
    x.set(part, offset);
    offset += part.length;
  }
  return { x, y: Float32Array.from(ys), runs: seeds.length, frames };
}

/** Balloons look the same mirrored along or across their axis: flips double the data for free. */
export function flipAugment(rand: () => number): (features: Float32Array) => void {
  const row = new Float32Array(PATCH_COLUMNS);
  return (features) => {
    if (rand() < 0.5) {
      for (let r = 0; r < PATCH_ROWS; r++) features.subarray(r * PATCH_COLUMNS, (r + 1) * PATCH_COLUMNS).reverse();
    }
    if (rand() < 0.5) {
      for (let r = 0; r < PATCH_ROWS / 2; r++) {
        const top = features.subarray(r * PATCH_COLUMNS, (r + 1) * PATCH_COLUMNS);
        const bottom = features.subarray((PATCH_ROWS - 1 - r) * PATCH_COLUMNS, (PATCH_ROWS - r) * PATCH_COLUMNS);
        row.set(top);
        top.set(bottom);
        bottom.set(row);
      }
    }
  };
}
