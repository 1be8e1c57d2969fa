import { describe, expect, it } from 'vitest';
import { RunPreparer, prepareRun } from '@arteria/balloon-inflation';
import { batchStack, stackBatches, type FrameStack } from '@arteria/sdk';
import { renderBalloonRun } from '@arteria/synth';

function stackOf(frames: number, seed: number, size: number): FrameStack {
  const { pixels, truth } = renderBalloonRun({ frames, seed, rows: size, columns: size, inflation: null });
  const o = truth.options;
  return { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels };
}

// runStream folds each batch into box means as it arrives; the model then sees exactly
// the input prepareRun makes from the whole run.
describe('balloon-inflation pre-processing in batches', () => {
  it('makes the same model input from any batching as from the whole run', { timeout: 120_000 }, async () => {
    const stack = stackOf(12, 35, 256);
    const whole = prepareRun(stack);
    for (const framesPerBatch of [1, 5, 12]) {
      const preparer = new RunPreparer(stack);
      for await (const batch of stackBatches(stack, framesPerBatch)) preparer.add(batchStack(stack, batch));
      const streamed = preparer.finish();
      expect(streamed.statistics, `${framesPerBatch} per batch`).toEqual(whole.statistics);
      expect(streamed.tensor).toEqual(whole.tensor);
    }
  });

  it('refuses a run that ends early or runs long', () => {
    const stack = stackOf(4, 36, 128);
    const short = new RunPreparer({ ...stack, frameCount: 5 });
    short.add(stack);
    expect(() => short.finish()).toThrow(/ended after 4 of 5 frames/);
    const long = new RunPreparer({ ...stack, frameCount: 3 });
    expect(() => long.add(stack)).toThrow(/beyond the run's 3 frames/);
  });
});
