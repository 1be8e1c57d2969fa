// A run let go of (release) while a step of it is still working in the algorithm's thread
// (its lease was lost, its host gave up on it): the step keeps no live state when it ends.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { AlgorithmRegistry, IncrementalRunner, type RegisteredAlgorithm } from '@arteria/worker';

const TALLY = fileURLToPath(new URL('../../testing/fixtures/algorithms/tally', import.meta.url));
const FRAMES = 4;
const FRAME_BYTES = 32 * 32;

describe('incremental runner: a run released while its step works', () => {
  let tally: RegisteredAlgorithm;
  let runner: IncrementalRunner;

  beforeAll(async () => {
    const registry = await AlgorithmRegistry.load([TALLY]);
    [tally] = registry.list() as [RegisteredAlgorithm];
    runner = new IncrementalRunner();
  });
  afterAll(() => runner.close());

  it('keeps no state of it once the step ends (tally folds a segment in 1.5 s; the release comes 0.3 s in)', async () => {
    const bytes = synthesizeXaRun({ seed: 81, rows: 32, columns: 32, frames: FRAMES, bitsStored: 8 }).bytes;
    const header = bytes.subarray(0, bytes.length - FRAMES * FRAME_BYTES);
    const pixels = bytes.subarray(bytes.length - FRAMES * FRAME_BYTES);
    const run = 'acme\0run-released';
    const opened = await runner.open(tally, run, header, false);
    expect(opened.live).toBeDefined();
    // The runner sends copies: the caller's bytes (Buffers here, views of one allocation) stay its own.
    expect(header.byteLength).toBeGreaterThan(0);
    expect(pixels.byteLength).toBe(FRAMES * FRAME_BYTES);

    const folding = runner.segment(tally, run, { from: { live: opened.live! }, encode: false, header, pixels, firstFrame: 0, frameCount: FRAMES });
    await new Promise((resolve) => setTimeout(resolve, 300));
    runner.release(tally, run);
    const folded = await folding;

    // The fold's answer still carries its state, as bytes: nothing of the run stays live in the thread.
    expect(folded.live).toBeUndefined();
    expect(folded.state).toBeDefined();
    expect(runner.stats().liveRuns).toBe(0);

    // A run released between its steps is unaffected by that: its next step keeps its state as before.
    const again = await runner.open(tally, run, header, false);
    expect(again.live).toBeDefined();
    expect(runner.stats().liveRuns).toBe(1);
  });

  it('takes handed-over pixels that span their buffer without a copy (the caller\'s view is detached) and copies a view of a larger buffer; both fold alike', async () => {
    const bytes = synthesizeXaRun({ seed: 83, rows: 32, columns: 32, frames: FRAMES, bitsStored: 8 }).bytes;
    const header = bytes.subarray(0, bytes.length - FRAMES * FRAME_BYTES);
    const view = bytes.subarray(bytes.length - FRAMES * FRAME_BYTES);
    const whole = new Uint8Array(view); // a buffer of its own, as an input source reads a segment
    const outputs: unknown[] = [];
    for (const [name, pixels] of [['whole', whole], ['view', view]] as const) {
      const run = `acme\0run-handed-over-${name}`;
      const opened = await runner.open(tally, run, header, false);
      const folded = await runner.segment(tally, run, { from: { live: opened.live! }, encode: false, header, pixels, handOver: true, firstFrame: 0, frameCount: FRAMES });
      outputs.push(await runner.finish(tally, run, { from: { live: folded.live! }, header, frames: FRAMES }));
    }
    expect(whole.byteLength).toBe(0); // transferred
    expect(view.byteLength).toBe(FRAMES * FRAME_BYTES); // copied: the larger buffer stays the caller's
    expect(outputs[0]).toEqual(outputs[1]);
    expect(outputs[0]).toMatchObject({ frames: FRAMES });
  });

  it("refuses a segment that takes the run past the manifest's maxFrames UNSUPPORTED_DICOM, before the algorithm folds it", async () => {
    const frames = 201; // tally accepts at most 200
    const bytes = synthesizeXaRun({ seed: 82, rows: 32, columns: 32, frames, bitsStored: 8 }).bytes;
    const header = bytes.subarray(0, bytes.length - frames * FRAME_BYTES);
    const pixels = bytes.subarray(bytes.length - frames * FRAME_BYTES);
    const run = 'acme\0run-too-long';
    const opened = await runner.open(tally, run, header, false);
    const started = Date.now();
    await expect(runner.segment(tally, run, { from: { live: opened.live! }, encode: false, header, pixels, firstFrame: 0, frameCount: frames })).rejects.toMatchObject({ code: 'UNSUPPORTED_DICOM' });
    expect(Date.now() - started).toBeLessThan(1_500); // not folded (a fold takes 1.5 s)
  });
});
