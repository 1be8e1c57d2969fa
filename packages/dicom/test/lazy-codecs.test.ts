import { once } from 'node:events';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

/**
 * In a fresh thread (its own module cache, as an algorithm thread has): which CommonJS
 * files of dcmjs-codecs are loaded after importing @arteria/dicom and decoding a native
 * run, and after loading the pixel codecs.
 */
const PROBE = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = () => Object.keys(require.cache).filter((file) => file.includes('dcmjs-codecs')).length;
(async () => {
  const { decodeRun, synthesizeXaRun, loadPixelCodecs } = await import(workerData.dicom);
  await decodeRun(synthesizeXaRun({ seed: 1, rows: 16, columns: 16, frames: 2, bitsStored: 8 }).bytes);
  const afterNativeRun = loaded();
  await loadPixelCodecs();
  parentPort.postMessage({ afterNativeRun, afterCodecs: loaded() });
})();
`;

describe('pixel codecs', () => {
  it('are loaded only when a run needs them: a thread that decodes native runs does not hold dcmjs-codecs', async () => {
    const dicom = pathToFileURL(createRequire(import.meta.url).resolve('@arteria/dicom')).href;
    const thread = new Worker(PROBE, { eval: true, workerData: { dicom } });
    const [counts] = (await once(thread, 'message')) as [{ afterNativeRun: number; afterCodecs: number }];
    await thread.terminate();
    expect(counts.afterNativeRun).toBe(0);
    expect(counts.afterCodecs).toBeGreaterThan(0);
  }, 60_000);
});
