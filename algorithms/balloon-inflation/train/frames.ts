import type { FrameStack } from '@arteria/sdk';
import type { RenderedRun } from '@arteria/synth';

/** A rendered run as the decoded frame stack the platform hands to algorithms. */
export function frameStackOf({ pixels, truth }: RenderedRun): FrameStack {
  const o = truth.options;
  return { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels };
}
