// Incremental threads started ahead of any run (the worker plane's warm): a version with an
// incremental contract keeps its thread, ready for the first segmented run; one without has
// its thread stopped, and a run of it still answers NOT_INCREMENTAL, also when it comes
// while the thread is starting.
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { AlgorithmRegistry, IncrementalRunner, type RegisteredAlgorithm } from '@arteria/worker';

const fixture = (name: string): string => fileURLToPath(new URL(`../../testing/fixtures/algorithms/${name}`, import.meta.url));
const FRAMES = 4;

describe('incremental runner: threads started ahead of any run', () => {
  let tally: RegisteredAlgorithm;
  let echo: RegisteredAlgorithm;
  let runner: IncrementalRunner | undefined;
  const header = (() => {
    const bytes = synthesizeXaRun({ seed: 91, rows: 32, columns: 32, frames: FRAMES, bitsStored: 8 }).bytes;
    return bytes.subarray(0, bytes.length - FRAMES * 32 * 32);
  })();

  beforeAll(async () => {
    [tally] = (await AlgorithmRegistry.load([fixture('tally')])).list() as [RegisteredAlgorithm];
    [echo] = (await AlgorithmRegistry.load([fixture('echo')])).list() as [RegisteredAlgorithm];
  });
  afterEach(async () => {
    await runner?.close();
  });

  it('keeps the thread of a version with an incremental contract, and the first run uses it', async () => {
    runner = new IncrementalRunner();
    await runner.warm(tally);
    expect(runner.hasThread(tally)).toBe(true);
    const opened = await runner.open(tally, 'acme\0warm-run', header, false);
    expect(opened.live).toBeDefined();
    expect(runner.hasThread(tally)).toBe(true);
  });

  it('stops the thread of a version without one; a run of it later answers NOT_INCREMENTAL', async () => {
    runner = new IncrementalRunner();
    await runner.warm(echo);
    expect(runner.hasThread(echo)).toBe(false);
    await expect(runner.open(echo, 'acme\0echo-run', header, false)).rejects.toMatchObject({ code: 'NOT_INCREMENTAL' });
  });

  it('leaves the thread to a run that came while it started: the run answers NOT_INCREMENTAL, not a crash', async () => {
    runner = new IncrementalRunner();
    const warming = runner.warm(echo);
    const opening = runner.open(echo, 'acme\0echo-early', header, false);
    await warming;
    await expect(opening).rejects.toMatchObject({ code: 'NOT_INCREMENTAL' });
    expect(runner.hasThread(echo)).toBe(true);
  });
});
