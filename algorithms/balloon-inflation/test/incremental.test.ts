import { afterAll, describe, expect, it } from 'vitest';
import balloonInflation, { REFERENCE_FRAMES, SIDE } from '@arteria/balloon-inflation';
import { checkIncremental, incrementalAlgorithmOnDicom } from '@arteria/sdk';
import { synthesizeBalloonRun } from '@arteria/synth';
import { OnnxRuntimeBackend } from '@arteria/inference';

const backend = new OnnxRuntimeBackend();
afterAll(async () => {
  await backend.close();
});

// A run sent while it is acquired: the model runs on each segment as it arrives (once the
// first frames have set the reference), through a checkpoint each time, on exactly the input
// the one-shot run makes; the state does not grow with the run.
describe('balloon-inflation while the run is acquired', () => {
  it('gives the one-shot output, events included, however the run is cut, and reports each inflation once it has ended', { timeout: 120_000 }, async () => {
    const { bytes } = synthesizeBalloonRun({ seed: 41, frames: 40, rows: 192, columns: 192 });
    const run = await checkIncremental(balloonInflation, bytes, { inference: backend, segmentSizes: [1, 6, 40] });
    // Each inflation of the final output was reported once, unchanged, a few frames after it ended.
    expect(run.events.map(({ event }) => event)).toEqual(run.output.events.map((e) => ({ key: `inflation-${e.startFrame}`, frame: e.startFrame, ...e })));
    for (const { event, framesSeen } of run.events) expect(framesSeen).toBeGreaterThan((event['endFrame'] as number) + 3);
    // At most the first frames' box means, or the reference and the last two frames, and two probabilities a frame.
    expect(run.largestCheckpointBytes).toBeLessThan((REFERENCE_FRAMES + 3) * SIDE * SIDE * 4);
    const longer = await checkIncremental(balloonInflation, synthesizeBalloonRun({ seed: 44, frames: 120, rows: 128, columns: 128 }).bytes, { inference: backend, segmentSizes: [16] });
    expect(longer.largestCheckpointBytes).toBeLessThan((REFERENCE_FRAMES + 3) * SIDE * SIDE * 4);
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
