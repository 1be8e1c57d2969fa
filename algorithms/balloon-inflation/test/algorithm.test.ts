import { afterAll, describe, expect, it } from 'vitest';
import { decodeFrames, writeXaRun } from '@arteria/dicom';
import balloonInflation, { type BalloonInflationOutput } from '@arteria/balloon-inflation';
import type { FrameStack } from '@arteria/sdk';
import { renderBalloonRun, synthesizeBalloonRun, type BalloonRunInput } from '@arteria/synth';
import { OnnxRuntimeBackend } from '@arteria/inference';
import { outputProblem } from './manifest.js';

// These runs come from @arteria/synth, the second of the two generators the model was trained
// on (train/py's runs and other @arteria/synth seeds): no case here is a run it has seen.
const backend = new OnnxRuntimeBackend();
afterAll(async () => {
  await backend.close();
});

interface Truth {
  startFrame: number;
  endFrame: number;
}

/** A run whose pixels a test changed, written as DICOM and decoded, as the platform would receive it. */
async function detectIn(stack: FrameStack): Promise<BalloonInflationOutput> {
  const bytes = writeXaRun({ rows: stack.rows, columns: stack.columns, frames: stack.frameCount, pixels: stack.pixels, bitsStored: stack.bitsStored, photometric: stack.photometric, frameTimeMs: stack.frameTimeMs });
  const { header, frames } = decodeFrames(bytes);
  const output = await balloonInflation.run({ header, frames }, { signal: AbortSignal.timeout(60_000), inference: backend });
  expect(outputProblem(output)).toBeUndefined();
  return output;
}

async function detect(options: BalloonRunInput): Promise<{ output: BalloonInflationOutput; events: Truth[] }> {
  const { bytes, truth } = synthesizeBalloonRun(options);
  const { header, frames } = decodeFrames(bytes);
  const output = await balloonInflation.run({ header, frames }, { signal: AbortSignal.timeout(60_000), inference: backend });
  expect(outputProblem(output)).toBeUndefined();
  expect(output.frames).toBe(truth.options.frames);
  expect(output.frameTimeMs).toBeCloseTo(truth.frameTimeMs, 2);
  return { output, events: truth.events };
}

function expectFound(output: BalloonInflationOutput, events: readonly Truth[]): void {
  expect(output.inflationDetected).toBe(true);
  expect(output.balloon).toBe('inflated');
  expect(output.events.map((e) => [e.startFrame, e.endFrame]), JSON.stringify(events)).toHaveLength(events.length);
  output.events.forEach((found, i) => {
    const truth = events[i]!;
    expect(Math.abs(found.startFrame - truth.startFrame), `start ${found.startFrame} vs ${truth.startFrame}`).toBeLessThanOrEqual(2);
    expect(Math.abs(found.endFrame - truth.endFrame), `end ${found.endFrame} vs ${truth.endFrame}`).toBeLessThanOrEqual(2);
    expect(found.startMs).toBeCloseTo(found.startFrame * output.frameTimeMs, 1);
    expect(found.confidence).toBeGreaterThan(0.6);
  });
}

function stackOf(options: BalloonRunInput): { stack: FrameStack; events: Truth[] } {
  const { pixels, truth } = renderBalloonRun(options);
  const o = truth.options;
  return { stack: { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels }, events: truth.events };
}

describe('balloon-inflation on runs from another generator, through DICOM and ONNX Runtime', { timeout: 180_000 }, () => {
  it.each<[string, BalloonRunInput]>([
    ['768x768, 16-bit, 30 Hz', { seed: 7003, rows: 768, columns: 768, frames: 24, bitsStored: 16, frameRateHz: 30, inflation: { inflateStart: 4, inflatedStart: 7, deflateStart: 16, deflatedEnd: 19 } }],
    ['512x512, 12-bit, 15 Hz', { seed: 7001, rows: 512, columns: 512, frames: 36, bitsStored: 12, frameRateHz: 15, inflation: { inflateStart: 8, inflatedStart: 12, deflateStart: 24, deflatedEnd: 28 } }],
  ])('finds the inflation in a %s run', async (_name, options) => {
    const { output, events } = await detect(options);
    expect(events).toHaveLength(1);
    expectFound(output, events);
    expect(output.balloonFrames).toBeGreaterThan(output.frames / 2);
  });

  // Known failures of 2.x (extra short events, contrast taken for an inflation) that 3.0.0 passes.
  it.each<[string, BalloonRunInput]>([
    ['256x256, 8-bit, 7.5 Hz, MONOCHROME1, low dose', { seed: 7002, rows: 256, columns: 256, frames: 30, bitsStored: 8, frameRateHz: 7.5, photometric: 'MONOCHROME1', dose: 0.4, inflation: { inflateStart: 5, inflatedStart: 8, deflateStart: 20, deflatedEnd: 23 } }],
    ['512x512, 10-bit, with a contrast injection', { seed: 7004, rows: 512, columns: 512, frames: 40, bitsStored: 10, contrast: { startFrame: 3, peakFrame: 9, endFrame: 30 }, inflation: { inflateStart: 14, inflatedStart: 18, deflateStart: 28, deflatedEnd: 32 } }],
  ])('finds exactly the inflation in a %s run', async (_name, options) => {
    const { output, events } = await detect(options);
    expectFound(output, events);
  });

  it('finds the inflation behind closed collimator shutters whose stored values sit at the floor', async () => {
    const { stack, events } = stackOf({ seed: 7005, rows: 512, columns: 512, frames: 36, bitsStored: 12, inflation: { inflateStart: 8, inflatedStart: 12, deflateStart: 24, deflatedEnd: 28 } });
    // Lead over the left 15% and the bottom 12% of the field: a few counts of noise.
    const pixels = Uint16Array.from(stack.pixels, (v, i) => {
      const x = i % 512;
      const y = Math.floor(i / 512) % 512;
      return x < 77 || y > 450 ? (i * 2654435761) % 5 : v;
    });
    expectFound(await detectIn({ ...stack, pixels }), events);
  });

  it('finds both inflations of a run with two', async () => {
    const common = { seed: 7006, rows: 384, columns: 384, frames: 60, bitsStored: 12, frameRateHz: 15 } as const;
    const first = stackOf({ ...common, inflation: { inflateStart: 6, inflatedStart: 9, deflateStart: 20, deflatedEnd: 23 } });
    const second = stackOf({ ...common, inflation: { inflateStart: 36, inflatedStart: 39, deflateStart: 50, deflatedEnd: 53 } });
    // The same scene and motion (same seed): the first half of one run, the second half of the other.
    const half = 30 * 384 * 384;
    const pixels = new Uint16Array(first.stack.pixels.length);
    pixels.set(first.stack.pixels.subarray(0, half));
    pixels.set(second.stack.pixels.subarray(half), half);
    expectFound(await detectIn({ ...first.stack, pixels }), [...first.events, ...second.events]);
  });

  it('reports no inflation for a deflated balloon during a contrast injection', async () => {
    const { output, events } = await detect({ seed: 7101, rows: 512, columns: 512, frames: 36, inflation: null, contrast: { startFrame: 4, peakFrame: 10, endFrame: 30 } });
    expect(events).toEqual([]);
    expect(output).toMatchObject({ inflationDetected: false, events: [], balloon: 'visible' });
  });

  // Known failures of this model on this generator (MODEL_CARD.md, Limitations): with contrast
  // in the vessels or a table pan, a balloon is seen where there is none (3.1.0 reports no
  // inflation for either; 3.0.0 took the contrast for one). The assertions are the ones every case must meet; when a model passes
  // them, vitest reports these as failing, and they move to the cases above.
  it.fails.each<[string, BalloonRunInput, BalloonInflationOutput['balloon']]>([
    ['contrast injection without a balloon', { seed: 7102, rows: 512, columns: 512, frames: 36, device: 'none', contrast: { startFrame: 4, peakFrame: 10, endFrame: 30 } }, 'not-visible'],
    ['table pan without a balloon', { seed: 7103, rows: 512, columns: 512, frames: 30, device: 'none', tablePan: { startFrame: 5, endFrame: 20, dx: 0.25, dy: 0.1 } }, 'not-visible'],
  ])('does not yet report no inflation for a %s', async (_name, options, balloon) => {
    const { output, events } = await detect(options);
    expect(events).toEqual([]);
    expect(output).toMatchObject({ inflationDetected: false, events: [], balloon });
  });

  it('refuses to run without an inference backend', async () => {
    const { bytes } = synthesizeBalloonRun({ seed: 7201, rows: 128, columns: 128, frames: 4, inflation: null });
    const { header, frames } = decodeFrames(bytes);
    await expect(Promise.resolve(balloonInflation.run({ header, frames }, { signal: new AbortController().signal }))).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE' });
  });
});
