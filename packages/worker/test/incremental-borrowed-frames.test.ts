// A segment's pixel buffer comes back from the algorithm's thread after its fold when the
// algorithm only borrows its frames (contrast-injection), for the worker to read a later
// segment into; an algorithm that does not say so (tally) keeps its frames.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { AlgorithmRegistry, IncrementalRunner, type RegisteredAlgorithm } from '@arteria/worker';

const TALLY = fileURLToPath(new URL('../../testing/fixtures/algorithms/tally', import.meta.url));
const CONTRAST = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));
const FRAMES = 8;
const SIDE = 64;

describe('incremental runner: frames borrowed by the algorithm', () => {
  let tally: RegisteredAlgorithm;
  let contrast: RegisteredAlgorithm;
  let runner: IncrementalRunner;

  beforeAll(async () => {
    const registry = await AlgorithmRegistry.load([TALLY, CONTRAST]);
    const named = (name: string): RegisteredAlgorithm => registry.list().find((a) => a.manifest.name === name) as RegisteredAlgorithm;
    tally = named('tally');
    contrast = named('contrast-injection');
    runner = new IncrementalRunner();
  });
  afterAll(() => runner.close());

  /** Folds the run in two segments handed over; the buffers given back, and the output. */
  async function fold(algorithm: RegisteredAlgorithm, run: string): Promise<{ given: (ArrayBuffer | undefined)[]; output: unknown }> {
    const bytes = synthesizeXaRun({ seed: 84, rows: SIDE, columns: SIDE, frames: FRAMES, bitsStored: 8 }).bytes;
    const plane = SIDE * SIDE;
    const header = bytes.subarray(0, bytes.length - FRAMES * plane);
    let from = { live: (await runner.open(algorithm, run, header, false)).live! };
    const given: (ArrayBuffer | undefined)[] = [];
    for (const first of [0, FRAMES / 2]) {
      // A buffer of its own, as an input source reads a segment: handed over without a copy.
      const pixels = new Uint8Array(bytes.subarray(bytes.length - (FRAMES - first) * plane, bytes.length - (FRAMES / 2 - first) * plane));
      const folded = await runner.segment(algorithm, run, { from, encode: false, header, pixels, handOver: true, firstFrame: first, frameCount: FRAMES / 2 });
      expect(pixels.byteLength).toBe(0); // transferred to the thread
      given.push(folded.pixels);
      from = { live: folded.live! };
    }
    return { given, output: await runner.finish(algorithm, run, { from, header, frames: FRAMES }) };
  }

  it('gives a borrowing algorithm\'s segment buffers back, whole, after each fold', async () => {
    const { given, output } = await fold(contrast, 'acme\0run-borrowed');
    expect(given.map((b) => b?.byteLength)).toEqual([(FRAMES / 2) * SIDE * SIDE, (FRAMES / 2) * SIDE * SIDE]);
    expect(output).toMatchObject({ frames: FRAMES });
  });

  it('keeps the frames of an algorithm that does not say it borrows them', async () => {
    const { given, output } = await fold(tally, 'acme\0run-kept');
    expect(given).toEqual([undefined, undefined]);
    expect(output).toMatchObject({ frames: FRAMES });
  });
});
