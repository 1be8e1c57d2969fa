import { describe, expect, it } from 'vitest';
import { synthesizeXaRun, type SynthesizeOptions } from '@arteria/dicom';
import { runAlgorithmOnDicom, streamAlgorithmOnDicom } from '@arteria/sdk';
import contrastInjection from '@arteria/contrast-injection';

// The platform calls runStream with frames as they arrive; it must answer what run answers,
// however the run is cut into chunks and batches (a batch may end inside the baseline).
describe('contrast-injection streamed in batches', () => {
  const runs: [string, SynthesizeOptions][] = [
    ['8-bit, one frame per batch', { seed: 21, rows: 64, columns: 64, bitsStored: 8, frames: 30, contrast: { startFrame: 7, peakFrame: 15, endFrame: 24 } }],
    ['12-bit MONOCHROME1, odd chunks', { seed: 22, rows: 96, columns: 128, bitsStored: 12, frames: 20, photometric: 'MONOCHROME1', contrast: { startFrame: 5, peakFrame: 9, endFrame: 16 } }],
    ['16-bit, no contrast', { seed: 23, rows: 128, columns: 128, bitsStored: 16, frames: 24, contrast: null }],
  ];
  it.each(runs)('%s', async (_, options) => {
    const { bytes } = synthesizeXaRun(options);
    const whole = await runAlgorithmOnDicom(contrastInjection, bytes);
    for (const [chunkBytes, batchBytes] of [
      [4093, 1],
      [65_536, 3 * 64 * 64 * 2 + 1],
      [1 << 20, 8 << 20],
    ] as const) {
      expect(await streamAlgorithmOnDicom(contrastInjection, bytes, { chunkBytes, batchBytes }), `${chunkBytes}/${batchBytes}`).toEqual(whole);
    }
  });
});
