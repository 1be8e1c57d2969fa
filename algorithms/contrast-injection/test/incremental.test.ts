import { describe, expect, it } from 'vitest';
import { synthesizeXaRun, type SynthesizeOptions } from '@arteria/dicom';
import { checkIncremental, incrementalAlgorithmOnDicom, runAlgorithmOnDicom } from '@arteria/sdk';
import contrastInjection from '@arteria/contrast-injection';
import { SETTLED_FRAMES } from '../src/incremental.js';

// A run sent while it is acquired reaches the algorithm segment by segment, its state
// checkpointed between segments; the final output must be the one-shot output, whether the
// run ends before or after its baseline is settled.
describe('contrast-injection while the run is acquired', () => {
  const runs: [string, SynthesizeOptions][] = [
    ['short run (baseline never settles)', { seed: 31, rows: 64, columns: 64, bitsStored: 8, frames: 30, contrast: { startFrame: 7, peakFrame: 15, endFrame: 24 } }],
    ['long run, 12-bit MONOCHROME1', { seed: 32, rows: 48, columns: 64, bitsStored: 12, frames: 90, photometric: 'MONOCHROME1', contrast: { startFrame: 20, peakFrame: 45, endFrame: 70 } }],
    ['long run, no contrast', { seed: 33, rows: 48, columns: 48, bitsStored: 16, frames: 70, contrast: null }],
    ['exactly the settling length', { seed: 34, rows: 32, columns: 32, bitsStored: 8, frames: SETTLED_FRAMES, contrast: { startFrame: 10, peakFrame: 25, endFrame: 40 } }],
  ];

  it.each(runs)('%s: the final output equals the one-shot output', async (_, options) => {
    const { bytes } = synthesizeXaRun(options);
    await checkIncremental(contrastInjection, bytes, { segmentSizes: [1, 5, SETTLED_FRAMES - 1, 200] });
  });

  it('reports contrast arrival before the run ends, once, inside the injection the final result names', async () => {
    const { bytes } = synthesizeXaRun({ seed: 35, rows: 64, columns: 64, bitsStored: 8, frames: 120, contrast: { startFrame: 60, peakFrame: 80, endFrame: 100 } });
    const { output, events } = await incrementalAlgorithmOnDicom(contrastInjection, bytes, { framesPerSegment: 10 });
    const final = output;
    expect(final.injection).not.toBeNull();
    expect(events).toHaveLength(1);
    const [{ event, framesSeen }] = events as [(typeof events)[0]];
    expect(event).toMatchObject({ key: 'contrast-arrival', type: 'contrast-arrival' });
    expect(framesSeen).toBeLessThan(120);
    expect(event.frame).toBeGreaterThanOrEqual(final.injection!.startFrame);
    expect(event.frame).toBeLessThanOrEqual(final.injection!.peakFrame);
  });

  it('reports nothing early on a run without contrast', async () => {
    const { bytes } = synthesizeXaRun({ seed: 36, rows: 64, columns: 64, bitsStored: 8, frames: 100, contrast: null });
    const { events, output } = await incrementalAlgorithmOnDicom(contrastInjection, bytes, { framesPerSegment: 9 });
    expect(events).toEqual([]);
    expect(output).toEqual(await runAlgorithmOnDicom(contrastInjection, bytes));
  });

  it('refuses a segment that skips frames, and a run too short to measure', async () => {
    const incremental = contrastInjection.incremental!;
    const { bytes } = synthesizeXaRun({ seed: 37, rows: 32, columns: 32, frames: 3 });
    await expect(incrementalAlgorithmOnDicom(contrastInjection, bytes)).rejects.toMatchObject({ code: 'ALGORITHM_FAILED' });
    const signal = new AbortController().signal;
    const state = incremental.createState({ header: {} as never, layout: { rows: 32, columns: 32, bitsStored: 8, photometric: 'MONOCHROME2', frameTimeMs: 66.7 } }, { signal });
    const frames = { rows: 32, columns: 32, frameCount: 1, bitsStored: 8, photometric: 'MONOCHROME2' as const, frameTimeMs: 66.7, pixels: new Uint8Array(1024) };
    expect(() => incremental.onFrames(state, { firstFrame: 2, frames }, { signal })).toThrow(expect.objectContaining({ code: 'ALGORITHM_FAILED' }));
  });
});
