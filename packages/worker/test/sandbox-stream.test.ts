import { fixtureAlgorithm } from '@arteria/testing';
// The runner with a streamed input: the input's own checks decide before the algorithm's
// answer is released, however early the algorithm finishes.
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { synthesizeXaRun } from '@arteria/dicom';
import { AlgorithmRegistry, AlgorithmRunner, type RegisteredAlgorithm, type StreamSource } from '@arteria/worker';

const ECHO = fixtureAlgorithm('echo');
const CONTRAST_INJECTION = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));
const RUN = synthesizeXaRun({ seed: 9, rows: 256, columns: 256, frames: 40, bitsStored: 12 }).bytes;

/** The run in 64 KiB chunks; `after` runs once every chunk was taken (the end of the source). */
function source(bytes: Uint8Array, after?: () => Promise<void>): StreamSource {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < bytes.length; at += 65_536) yield bytes.slice(at, at + 65_536);
    await after?.();
  }
  return { chunks: chunks(), size: bytes.length };
}

describe('algorithm runner: streamed inputs', () => {
  const runner = new AlgorithmRunner();
  let echo: RegisteredAlgorithm;
  let contrast: RegisteredAlgorithm;

  beforeAll(async () => {
    [echo] = (await AlgorithmRegistry.load([ECHO])).list() as [RegisteredAlgorithm];
    [contrast] = (await AlgorithmRegistry.load([CONTRAST_INJECTION])).list() as [RegisteredAlgorithm];
  });
  afterAll(async () => runner.close());

  it('answers a streamed run as it answers the whole file, for streaming and whole-run algorithms', async () => {
    for (const algorithm of [contrast, echo]) {
      const whole = await runner.run(algorithm, new Uint8Array(RUN));
      const streamed = await runner.run(algorithm, source(RUN));
      expect(streamed.output).toEqual(whole.output);
    }
  });

  it('returns the source\'s error, not the output, when the input fails its checks after the algorithm answered', async () => {
    const mismatch = new ArteriaError('CHECKSUM_MISMATCH', 'input has SHA-256 0000; the request declared ffff');
    for (const algorithm of [contrast, echo]) {
      // The last frame's bytes arrive, then the source takes a while before it fails.
      const run = runner.run(algorithm, source(RUN, async () => {
        await sleep(300);
        throw mismatch;
      }));
      await expect(run).rejects.toBe(mismatch);
    }
    // The thread took the next task as soon as it had answered.
    expect((await runner.run(contrast, source(RUN))).output).toBeDefined();
  });

  it('fails a source that breaks off mid-run with the source\'s error', async () => {
    const broken = new ArteriaError('STORAGE_UNAVAILABLE', 'reading the input failed: connection reset');
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield RUN.slice(0, 1 << 20);
      await sleep(10);
      throw broken;
    }
    await expect(runner.run(contrast, { chunks: chunks(), size: RUN.length })).rejects.toBe(broken);
  });

  it('says when a run would start at once on a thread that takes whole runs only', async () => {
    const fresh = new AlgorithmRunner();
    try {
      // No thread has loaded yet: nobody knows what the algorithm takes.
      expect(fresh.wantsWholeInput(echo)).toBe(false);
      await fresh.warm(echo);
      await fresh.warm(contrast);
      expect(fresh.wantsWholeInput(echo)).toBe(true);
      // contrast-injection streams (runStream): its input is streamed.
      expect(fresh.wantsWholeInput(contrast)).toBe(false);
      // Its one thread busy: a run submitted now would wait, holding its input.
      const running = fresh.run(echo, new Uint8Array(RUN));
      expect(fresh.wantsWholeInput(echo)).toBe(false);
      expect((await running).output).toMatchObject({ frames: 40 });
      expect(fresh.wantsWholeInput(echo)).toBe(true);
    } finally {
      await fresh.close();
    }
    expect(fresh.wantsWholeInput(echo)).toBe(false);
  });

  it('answers a run streamed in one chunk (a small input read in one step) as the whole file, errors included', async () => {
    const small = synthesizeXaRun({ seed: 3, rows: 32, columns: 32, frames: 12, bitsStored: 8 }).bytes;
    const oneChunk = (bytes: Uint8Array): StreamSource => {
      async function* chunks(): AsyncGenerator<Uint8Array> {
        yield await Promise.resolve(new Uint8Array(bytes));
      }
      return { chunks: chunks(), size: bytes.length };
    };
    for (const algorithm of [contrast, echo]) {
      const whole = await runner.run(algorithm, new Uint8Array(small));
      expect((await runner.run(algorithm, oneChunk(small))).output).toEqual(whole.output);
    }
    const truncated = small.slice(0, small.length - 2_000);
    await expect(runner.run(contrast, oneChunk(truncated))).rejects.toMatchObject({ code: 'INVALID_DICOM', message: expect.stringContaining('truncated') as unknown });
    await expect(runner.run(contrast, oneChunk(new Uint8Array(4_000)))).rejects.toMatchObject({ code: 'INVALID_DICOM' });
  });

  it('fails a truncated run with INVALID_DICOM, streamed as whole', async () => {
    const truncated = RUN.slice(0, RUN.length - 100_000);
    for (const input of [new Uint8Array(truncated), source(truncated)]) {
      await expect(runner.run(contrast, input)).rejects.toMatchObject({ code: 'INVALID_DICOM', message: expect.stringContaining('truncated') as unknown });
    }
  });
});
