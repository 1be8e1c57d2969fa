import { describe, expect, it } from 'vitest';
import { RunPreparer, prepareRun } from '@arteria/balloon-inflation';
import { batchStack, stackBatches, type FrameStack } from '@arteria/sdk';
import { renderBalloonRun } from '@arteria/synth';

// runStream folds each batch into the model input as it arrives; the model then sees
// exactly the patches prepareRun cuts from the whole run.
describe('balloon-inflation pre-processing in batches', () => {
  it('cuts the same patches from any batching as from the whole run', async () => {
    const { pixels, truth } = renderBalloonRun({ frames: 12, seed: 35, rows: 256, columns: 256, inflation: { inflateStart: 3, inflatedStart: 5, deflateStart: 8, deflatedEnd: 10 } });
    const o = truth.options;
    const stack: FrameStack = { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels };
    const whole = prepareRun(stack, 2048, 4096);
    for (const framesPerBatch of [1, 5, 12]) {
      const preparer = new RunPreparer(stack, 2048, 4096);
      for await (const batch of stackBatches(stack, framesPerBatch)) preparer.add(batchStack(stack, batch));
      const streamed = preparer.finish();
      expect(streamed.patchFrames, `${framesPerBatch} per batch`).toEqual(whole.patchFrames);
      expect(streamed.patches).toEqual(whole.patches);
      expect(streamed.markers).toEqual(whole.markers);
    }
  });

  it('refuses a run that ends early or runs long', () => {
    const { pixels, truth } = renderBalloonRun({ frames: 4, seed: 36, rows: 128, columns: 128 });
    const o = truth.options;
    const stack: FrameStack = { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels };
    const short = new RunPreparer({ ...stack, frameCount: 5 });
    short.add(stack);
    expect(() => short.finish()).toThrow(/ended after 4 of 5 frames/);
    const long = new RunPreparer({ ...stack, frameCount: 3 });
    expect(() => long.add(stack)).toThrow(/beyond the run's 3 frames/);
  });
});
