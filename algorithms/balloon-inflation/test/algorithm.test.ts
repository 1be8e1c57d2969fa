import { afterAll, describe, expect, it } from 'vitest';
import { decodeFrames } from '@arteria/dicom';
import balloonInflation, { type BalloonInflationOutput } from '@arteria/balloon-inflation';
import { synthesizeBalloonRun, type BalloonRunInput } from '@arteria/synth';
import { OnnxRuntimeBackend } from '@arteria/inference';
import { outputProblem } from './manifest.js';

const backend = new OnnxRuntimeBackend();
afterAll(async () => {
  await backend.close();
});

async function detect(options: BalloonRunInput): Promise<{ output: BalloonInflationOutput; events: { startFrame: number; endFrame: number }[] }> {
  const { bytes, truth } = synthesizeBalloonRun(options);
  const { header, frames } = decodeFrames(bytes);
  const output = await balloonInflation.run({ header, frames }, { signal: AbortSignal.timeout(20_000), inference: backend });
  expect(outputProblem(output)).toBeUndefined();
  expect(output.frames).toBe(truth.options.frames);
  expect(output.frameTimeMs).toBeCloseTo(truth.frameTimeMs, 2);
  return { output, events: truth.events };
}

describe('balloon-inflation on generated runs, through DICOM and ONNX Runtime', () => {
  it.each<[string, BalloonRunInput]>([
    ['512x512, 12-bit, 15 Hz', { seed: 7001, rows: 512, columns: 512, frames: 36, bitsStored: 12, frameRateHz: 15, inflation: { inflateStart: 8, inflatedStart: 12, deflateStart: 24, deflatedEnd: 28 } }],
    ['256x256, 8-bit, 7.5 Hz, MONOCHROME1, low dose', { seed: 7002, rows: 256, columns: 256, frames: 30, bitsStored: 8, frameRateHz: 7.5, photometric: 'MONOCHROME1', dose: 0.4, inflation: { inflateStart: 5, inflatedStart: 8, deflateStart: 20, deflatedEnd: 23 } }],
    ['1024x1024, 16-bit, 30 Hz', { seed: 7003, rows: 1024, columns: 1024, frames: 24, bitsStored: 16, frameRateHz: 30, inflation: { inflateStart: 4, inflatedStart: 7, deflateStart: 16, deflatedEnd: 19 } }],
    ['512x512, 10-bit, with a contrast injection', { seed: 7004, rows: 512, columns: 512, frames: 40, bitsStored: 10, contrast: { startFrame: 3, peakFrame: 9, endFrame: 30 }, inflation: { inflateStart: 14, inflatedStart: 18, deflateStart: 28, deflatedEnd: 32 } }],
  ])('finds the inflation in a %s run', async (_name, options) => {
    const { output, events } = await detect(options);
    expect(events).toHaveLength(1);
    expect(output.inflationDetected).toBe(true);
    expect(output.events).toHaveLength(1);
    const [found] = output.events;
    const [truth] = events;
    expect(Math.abs(found!.startFrame - truth!.startFrame), `start ${found!.startFrame} vs ${truth!.startFrame}`).toBeLessThanOrEqual(2);
    expect(Math.abs(found!.endFrame - truth!.endFrame), `end ${found!.endFrame} vs ${truth!.endFrame}`).toBeLessThanOrEqual(2);
    expect(found!.startMs).toBeCloseTo(found!.startFrame * output.frameTimeMs, 1);
    expect(found!.confidence).toBeGreaterThan(0.7);
    expect(output.markerFrames).toBe(output.frames);
  });

  it.each<[string, BalloonRunInput]>([
    ['deflated balloon during a contrast injection', { seed: 7101, rows: 512, columns: 512, frames: 36, inflation: null, contrast: { startFrame: 4, peakFrame: 10, endFrame: 30 } }],
    ['contrast injection without a balloon', { seed: 7102, rows: 512, columns: 512, frames: 36, device: 'none', contrast: { startFrame: 4, peakFrame: 10, endFrame: 30 } }],
    ['table pan without a balloon', { seed: 7103, rows: 512, columns: 512, frames: 30, device: 'none', tablePan: { startFrame: 5, endFrame: 20, dx: 0.25, dy: 0.1 } }],
  ])('reports nothing for a %s', async (_name, options) => {
    const { output, events } = await detect(options);
    expect(events).toEqual([]);
    expect(output).toMatchObject({ inflationDetected: false, events: [] });
  });

  it('refuses to run without an inference backend', async () => {
    const { bytes } = synthesizeBalloonRun({ seed: 7201, rows: 128, columns: 128, frames: 4, inflation: null });
    const { header, frames } = decodeFrames(bytes);
    await expect(Promise.resolve(balloonInflation.run({ header, frames }, { signal: new AbortController().signal }))).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE' });
  });
});
