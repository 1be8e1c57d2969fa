import type { FrameStack } from '@arteria/sdk';
import { renderBalloonRun, type BalloonRunInput } from '@arteria/synth';

/** A rendered balloon run as the frame stack an algorithm gets. */
export function stackOf(input: BalloonRunInput): FrameStack {
  const { pixels, truth } = renderBalloonRun(input);
  const o = truth.options;
  return { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels };
}

/** The first index where a and b differ (or their lengths do), -1 when they are equal: faster than toEqual on large arrays. */
export function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
