import { afterAll, describe, expect, it } from 'vitest';
import balloonInflation from '@arteria/balloon-inflation';
import { checkIncremental, incrementalAlgorithmOnDicom } from '@arteria/sdk';
import { synthesizeBalloonRun } from '@arteria/synth';
import { OnnxRuntimeBackend } from '@arteria/inference';

const backend = new OnnxRuntimeBackend();
afterAll(async () => {
  await backend.close();
});

// A run sent while it is acquired: box means fold in segment by segment through a checkpoint
// each time; the model runs at the end on exactly the input the one-shot run makes.
describe('balloon-inflation while the run is acquired', () => {
  it('gives the one-shot output, events included, however the run is cut', { timeout: 120_000 }, async () => {
    const { bytes } = synthesizeBalloonRun({ seed: 41, frames: 40, rows: 192, columns: 192 });
    const run = await checkIncremental(balloonInflation, bytes, { inference: backend, segmentSizes: [1, 6, 40] });
    expect(run.events).toEqual([]);
    expect(run.largestCheckpointBytes).toBeGreaterThan(40 * 128 * 128 * 4);
  });

  it('gives the one-shot output for a MONOCHROME1 run without a balloon', { timeout: 120_000 }, async () => {
    const { bytes } = synthesizeBalloonRun({ seed: 42, frames: 20, rows: 128, columns: 160, photometric: 'MONOCHROME1', inflation: null });
    await checkIncremental(balloonInflation, bytes, { inference: backend, segmentSizes: [3, 20] });
  });

  it('refuses to finish a run without frames, and needs an inference backend', async () => {
    const { bytes } = synthesizeBalloonRun({ seed: 43, frames: 6, rows: 128, columns: 128 });
    await expect(incrementalAlgorithmOnDicom(balloonInflation, bytes)).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE' });
    const incremental = balloonInflation.incremental!;
    const signal = new AbortController().signal;
    const state = incremental.createState({ header: {} as never, layout: { rows: 8, columns: 8, bitsStored: 8, photometric: 'MONOCHROME2', frameTimeMs: 66.7 } }, { signal });
    await expect(Promise.resolve().then(() => incremental.finish(state, { signal, inference: backend }))).rejects.toMatchObject({ code: 'ALGORITHM_FAILED' });
  });
});
