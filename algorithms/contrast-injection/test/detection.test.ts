import { describe, expect, it, vi } from 'vitest';
import { decodeFrames, synthesizeXaRun, type SynthesizeOptions } from '@arteria/dicom';
import { runAlgorithmOnDicom } from '@arteria/sdk';
import contrastInjection, { MAX_CURVE_POINTS, type ContrastInjectionOutput } from '@arteria/contrast-injection';
import { outputProblem } from './manifest.js';

async function detect(options: SynthesizeOptions): Promise<ContrastInjectionOutput> {
  const output = await runAlgorithmOnDicom(contrastInjection, synthesizeXaRun(options).bytes);
  expect(outputProblem(output)).toBeUndefined();
  expect(Buffer.byteLength(JSON.stringify(output))).toBeLessThan(8 * 1024);
  return output;
}

describe('contrast-injection on synthetic runs with an injection', () => {
  const runs: [string, SynthesizeOptions][] = [
    ['64x64, 8-bit, 15 Hz', { seed: 11, rows: 64, columns: 64, bitsStored: 8, frames: 30, contrast: { startFrame: 7, peakFrame: 15, endFrame: 24 } }],
    ['96x128, 12-bit, 7.5 Hz, MONOCHROME1', { seed: 12, rows: 96, columns: 128, bitsStored: 12, frameRateHz: 7.5, frames: 20, photometric: 'MONOCHROME1', contrast: { startFrame: 5, peakFrame: 9, endFrame: 16 } }],
    ['128x128, 16-bit, 30 Hz, slow fill', { seed: 13, rows: 128, columns: 128, bitsStored: 16, frameRateHz: 30, frames: 60, contrast: { startFrame: 12, peakFrame: 32, endFrame: 50 } }],
    ['256x256, 10-bit, 15 Hz, washes out past the end', { seed: 14, rows: 256, columns: 256, bitsStored: 10, frames: 24, contrast: { startFrame: 8, peakFrame: 14, endFrame: 23 } }],
    ['512x512, 12-bit, 15 Hz, MONOCHROME1', { seed: 15, rows: 512, columns: 512, bitsStored: 12, frames: 16, photometric: 'MONOCHROME1', contrast: { startFrame: 5, peakFrame: 9, endFrame: 14 } }],
    ['64x96, 16-bit, 12.5 Hz, abrupt', { seed: 16, rows: 64, columns: 96, bitsStored: 16, frameRateHz: 12.5, frames: 18, contrast: { startFrame: 6, peakFrame: 7, endFrame: 12 } }],
    ['128x128, 8-bit, 15 Hz, MONOCHROME1, default phases', { seed: 17, bitsStored: 8, photometric: 'MONOCHROME1', frames: 40 }],
    ['80x80, 14-bit, 60 Hz, many frames', { seed: 18, rows: 80, columns: 80, bitsStored: 14, frameRateHz: 60, frames: 150, contrast: { startFrame: 30, peakFrame: 50, endFrame: 110 } }],
  ];

  it.each(runs)('%s', async (_name, options) => {
    const truth = synthesizeXaRun(options).truth;
    const c = truth.contrast!;
    const output = await detect(options);
    expect(output.contrastDetected).toBe(true);
    const injection = output.injection!;
    expect(Math.abs(injection.startFrame - c.startFrame), `start ${injection.startFrame} vs ${c.startFrame}`).toBeLessThanOrEqual(2);
    expect(Math.abs(injection.peakFrame - c.peakFrame), `peak ${injection.peakFrame} vs ${c.peakFrame}`).toBeLessThanOrEqual(3);
    // The last frames of a long wash-out hold almost no contrast: the end is looser.
    const endTolerance = Math.max(3, Math.ceil((c.endFrame - c.peakFrame) / 5));
    expect(Math.abs(injection.endFrame - c.endFrame), `end ${injection.endFrame} vs ${c.endFrame}`).toBeLessThanOrEqual(endTolerance);
    expect(injection.startMs).toBeCloseTo(injection.startFrame * truth.frameTimeMs, 0);
    expect(injection.peakMs).toBeCloseTo(injection.peakFrame * truth.frameTimeMs, 0);
    expect(injection.peakOpacification).toBeGreaterThan(0.1);
    expect(injection.confidence).toBeGreaterThan(0.5);
    expect(output.frames).toBe(truth.frames);
    expect(output.frameTimeMs).toBeCloseTo(truth.frameTimeMs, 2);
    expect(output.curve).toHaveLength(Math.min(truth.frames, MAX_CURVE_POINTS));
  });

  it('follows the injection with its time-density curve', async () => {
    const output = await detect({ seed: 21, frames: 30, contrast: { startFrame: 6, peakFrame: 15, endFrame: 24 } });
    const curve = output.curve;
    const peak = Math.max(...curve);
    expect(curve.indexOf(peak)).toBeGreaterThanOrEqual(13);
    expect(curve.indexOf(peak)).toBeLessThanOrEqual(17);
    for (const f of [0, 1, 2, 3, 4, 27, 28, 29]) expect(Math.abs(curve[f]!)).toBeLessThan(peak * 0.1);
    expect(curve[10]!).toBeGreaterThan(peak * 0.2);
  });

  it('keeps the curve to 64 points on long runs', async () => {
    const output = await detect({ seed: 22, rows: 48, columns: 48, frames: 300, frameRateHz: 30, contrast: { startFrame: 60, peakFrame: 120, endFrame: 200 } });
    expect(output.curve).toHaveLength(MAX_CURVE_POINTS);
    expect(output.injection?.startFrame).toBeGreaterThanOrEqual(58);
  });
});

describe('contrast-injection on synthetic runs without contrast', () => {
  it('finds nothing across 24 seeds, sizes, bit depths and frame rates', async () => {
    const found: string[] = [];
    for (let seed = 100; seed < 124; seed++) {
      const size = [64, 80, 128][seed % 3]!;
      const options: SynthesizeOptions = {
        seed,
        rows: size,
        columns: size + 16,
        frames: [6, 16, 30, 45][seed % 4]!,
        bitsStored: ([8, 10, 12, 16] as const)[(seed >> 2) % 4],
        frameRateHz: [7.5, 15, 30][seed % 3]!,
        photometric: seed % 2 === 0 ? 'MONOCHROME2' : 'MONOCHROME1',
        contrast: null,
      };
      const output = await detect(options);
      if (output.contrastDetected) found.push(`seed ${seed}: ${JSON.stringify(output.injection)}`);
      expect(output.injection).toBeNull();
      expect(Math.max(...output.curve.map(Math.abs))).toBeLessThan(0.01);
    }
    expect(found).toEqual([]);
  });
});

describe('contrast-injection contract', () => {
  it('refuses runs shorter than four frames', async () => {
    await expect(runAlgorithmOnDicom(contrastInjection, synthesizeXaRun({ seed: 1, frames: 3, contrast: null }).bytes)).rejects.toMatchObject({
      code: 'ALGORITHM_FAILED',
    });
  });

  it('checks its signal between frames and stops when it is aborted', async () => {
    const { frames, header } = decodeFrames(synthesizeXaRun({ seed: 2, rows: 32, columns: 32, frames: 40 }).bytes);
    const counting = new AbortController();
    const checks = vi.spyOn(counting.signal, 'throwIfAborted');
    await contrastInjection.run({ header, frames }, { signal: counting.signal });
    expect(checks.mock.calls.length).toBeGreaterThanOrEqual(40);

    // Cancel while the run is under way: at the tenth check.
    const controller = new AbortController();
    const spy = vi.spyOn(controller.signal, 'throwIfAborted');
    spy.mockImplementation(() => {
      if (spy.mock.calls.length === 10) controller.abort(new Error('request cancelled'));
      if (controller.signal.aborted) throw controller.signal.reason;
    });
    await expect(async () => contrastInjection.run({ header, frames }, { signal: controller.signal })).rejects.toThrow('request cancelled');
    expect(spy.mock.calls.length).toBe(10);
  });

  it('does not start on an already aborted signal', async () => {
    const { frames, header } = decodeFrames(synthesizeXaRun({ seed: 2, rows: 32, columns: 32, frames: 8 }).bytes);
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(async () => contrastInjection.run({ header, frames }, { signal: controller.signal })).rejects.toThrow('gone');
  });
});
