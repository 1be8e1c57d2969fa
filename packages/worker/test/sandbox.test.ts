import { fixtureAlgorithm } from '@arteria/testing';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { synthesizeXaRun } from '@arteria/dicom';
import { AlgorithmRegistry, AlgorithmRunner, type RegisteredAlgorithm } from '@arteria/worker';

const FIXTURES = fixtureAlgorithm('');
const FIXTURE_NAMES = ['bad-output', 'crash', 'echo', 'oom', 'slow', 'throws'];

/** Five 64x64 frames; each call returns a fresh copy (a run transfers its bytes away). */
const RUN = synthesizeXaRun({ seed: 7, rows: 64, columns: 64, frames: 5, frameRateHz: 15, bitsStored: 12, contrast: null }).bytes;
const FOUR_FRAMES = synthesizeXaRun({ seed: 8, rows: 32, columns: 32, frames: 4, frameRateHz: 15, bitsStored: 8, contrast: null }).bytes;
const run = (): Uint8Array => new Uint8Array(RUN);

let tmp: string;
let registry: AlgorithmRegistry;
let copies = 0;

const algo = (name: string): RegisteredAlgorithm => registry.resolve(`${name}@1`);

type Manifest = Record<string, unknown> & { input: Record<string, unknown>; resources: Record<string, unknown> };

/** A private copy of a fixture, manifest edited, loaded on its own. */
async function variant(name: string, edit: (m: Manifest) => void, code?: string): Promise<RegisteredAlgorithm> {
  const dir = path.join(tmp, `${name}-${++copies}`);
  await cp(path.join(FIXTURES, name), dir, { recursive: true });
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest));
  if (code !== undefined) await writeFile(path.join(dir, 'lib', 'index.js'), code);
  const [loaded] = (await AlgorithmRegistry.load([dir])).list();
  if (!loaded) throw new Error('variant did not load');
  return loaded;
}

/** The ArteriaError a run rejects with. */
async function failure(promise: Promise<unknown>): Promise<ArteriaError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ArteriaError)) throw new Error(`expected an ArteriaError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'arteria-sandbox-'));
  registry = await AlgorithmRegistry.load(FIXTURE_NAMES.map((n) => path.join(FIXTURES, n)));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('AlgorithmRunner', () => {
  let runner: AlgorithmRunner;
  beforeAll(() => {
    runner = new AlgorithmRunner();
  });
  afterAll(async () => {
    await runner.close();
  });

  it('runs an algorithm in a thread and keeps that thread warm for the next task', async () => {
    const first = await runner.run(algo('echo'), run());
    expect(first.output).toMatchObject({ frames: 5, rows: 64, columns: 64, modality: 'XA' });
    expect(first.decodeMs).toBeGreaterThanOrEqual(0);
    expect(first.computeMs).toBeGreaterThanOrEqual(0);
    const started = runner.stats().threadsStarted;

    const second = await runner.run(algo('echo'), run());
    expect(second.output).toEqual(first.output);
    expect(runner.stats().threadsStarted).toBe(started);
    expect(runner.stats().threadsAlive).toBeGreaterThanOrEqual(1);
  });

  it('transfers a whole buffer and copies a view on a larger one', async () => {
    const whole = run();
    await runner.run(algo('echo'), whole);
    expect(whole.byteLength).toBe(0); // moved into the thread, not copied

    const big = new Uint8Array(RUN.length + 16);
    big.set(RUN, 8);
    const view = big.subarray(8, 8 + RUN.length);
    const result = await runner.run(algo('echo'), view);
    expect(result.output).toMatchObject({ frames: 5 });
    expect(view.byteLength).toBe(RUN.length);
    expect(big[8]).toBe(RUN[0]);
  });

  it('reports a thread that exits or throws uncaught as ALGORITHM_CRASHED, then runs on', async () => {
    const before = runner.stats();
    const exited = await failure(runner.run(algo('crash'), run()));
    expect(exited.code).toBe('ALGORITHM_CRASHED');
    expect(exited.message).toContain('crash@1.0.0');
    const uncaught = await failure(runner.run(algo('crash'), new Uint8Array(FOUR_FRAMES)));
    expect(uncaught.code).toBe('ALGORITHM_CRASHED');
    expect(uncaught.message).toContain('uncaught failure inside the algorithm');
    expect(runner.stats().crashes).toBe(before.crashes + 2);
    expect((await runner.run(algo('echo'), run())).output).toMatchObject({ frames: 5 });
  });

  it('stops an algorithm at its memory limit with ALGORITHM_CRASHED', async () => {
    const err = await failure(runner.run(algo('oom'), run()));
    expect(err.code).toBe('ALGORITHM_CRASHED');
    expect(err.message).toMatch(/out of memory \(limit 32 MB\)/);
    expect((await runner.run(algo('echo'), run())).output).toMatchObject({ frames: 5 });
  });

  it('terminates an algorithm past its timeout and starts a fresh thread for the next task', async () => {
    const before = runner.stats();
    const err = await failure(runner.run(algo('slow'), run()));
    expect(err.code).toBe('ALGORITHM_TIMEOUT');
    expect(err.message).toContain('300 ms');
    expect(runner.stats().timeouts).toBe(before.timeouts + 1);

    const again = await failure(runner.run(algo('slow'), run()));
    expect(again.code).toBe('ALGORITHM_TIMEOUT');
    expect(runner.stats().threadsStarted).toBe(before.threadsStarted + 2);
    expect((await runner.run(algo('echo'), run())).output).toMatchObject({ frames: 5 });
  });

  it('reports a thrown error as ALGORITHM_FAILED and keeps the thread', async () => {
    const err = await failure(runner.run(algo('throws'), run()));
    expect(err.code).toBe('ALGORITHM_FAILED');
    expect(err.message).toContain('cannot analyse this run');
    const started = runner.stats().threadsStarted;
    expect((await failure(runner.run(algo('throws'), run()))).code).toBe('ALGORITHM_FAILED');
    expect(runner.stats().threadsStarted).toBe(started);
  });

  it('rejects output that violates the schema with OUTPUT_INVALID naming the path', async () => {
    const err = await failure(runner.run(algo('bad-output'), run()));
    expect(err.code).toBe('OUTPUT_INVALID');
    expect(err.message).toContain('/frames');
  });

  it('keeps decoding errors: unsupported transfer syntax and non-DICOM bytes', async () => {
    const crashes = runner.stats().crashes;
    const bigEndian = Buffer.from(RUN);
    const explicitVr = Buffer.from('1.2.840.10008.1.2.1\0');
    const at = bigEndian.indexOf(explicitVr);
    expect(at).toBeGreaterThan(128);
    bigEndian.write('1.2.840.10008.1.2.2\0', at, 'latin1'); // Explicit VR Big Endian, same length
    const unsupported = await failure(runner.run(algo('echo'), bigEndian));
    expect(unsupported.code).toBe('UNSUPPORTED_TRANSFER_SYNTAX');
    expect(unsupported.message).toContain('1.2.840.10008.1.2.2');

    const notDicom = await failure(runner.run(algo('echo'), new TextEncoder().encode('just some text, not a DICOM file')));
    expect(notDicom.code).toBe('INVALID_DICOM');

    const truncated = await failure(runner.run(algo('echo'), run().subarray(0, RUN.length - 100)));
    expect(truncated.code).toBe('INVALID_DICOM');
    expect(runner.stats().crashes).toBe(crashes);
  });

  it('checks the input contract after decoding: UNSUPPORTED_DICOM', async () => {
    const ctOnly = await variant('echo', (m) => {
      m.input = { ...m.input, modalities: ['CT'] };
    });
    const modality = await failure(runner.run(ctOnly, run()));
    expect(modality.code).toBe('UNSUPPORTED_DICOM');
    expect(modality.message).toContain('modality XA');

    const fewFrames = await variant('echo', (m) => {
      m.input = { ...m.input, maxFrames: 3 };
    });
    const frames = await failure(runner.run(fewFrames, run()));
    expect(frames.code).toBe('UNSUPPORTED_DICOM');
    expect(frames.message).toContain('5 frames');

    const small = await variant('echo', (m) => {
      m.input = { ...m.input, maxRows: 32 };
    });
    expect((await failure(runner.run(small, run()))).message).toContain('64x64');

    const fast = await variant('echo', (m) => {
      m.input = { ...m.input, frameRateHz: { min: 25, max: 30 } };
    });
    expect((await failure(runner.run(fast, run()))).message).toContain('frame rate');
  });

  it('reports an entry without a run() as ALGORITHM_FAILED', async () => {
    const broken = await variant('echo', () => undefined, 'export const nothing = 1;\n');
    const err = await failure(runner.run(broken, run()));
    expect(err.code).toBe('ALGORITHM_FAILED');
    expect(err.message).toContain('could not be loaded');
  });

  it('runs two versions of one algorithm side by side, each in its own thread', async () => {
    const v2 = await variant('echo', (m) => {
      m.version = '2.0.0';
    });
    const started = runner.stats().threadsStarted;
    const [a, b] = await Promise.all([runner.run(algo('echo'), run()), runner.run(v2, run())]);
    expect(a.output).toEqual(b.output);
    expect(runner.stats().threadsStarted).toBe(started + 1);
  });

  it('rejects at once on abort, whether the task runs, waits or was never started', async () => {
    const longSlow = await variant('slow', (m) => {
      m.resources = { ...m.resources, timeoutMs: 120_000 };
    });
    await runner.warm(longSlow);
    const before = runner.stats();

    const running = new AbortController();
    const waiting = new AbortController();
    const first = runner.run(longSlow, run(), { signal: running.signal });
    const second = runner.run(longSlow, run(), { signal: waiting.signal });
    const firstSettled = first.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const secondSettled = second.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(runner.stats().queued).toBe(before.queued + 1);

    waiting.abort(new Error('waiting task no longer wanted'));
    expect(((await secondSettled) as Error).message).toBe('waiting task no longer wanted');
    expect(runner.stats().queued).toBe(before.queued);

    await sleep(50);
    running.abort(new ArteriaError('DEADLINE_EXCEEDED', 'deadline passed'));
    const reason = (await firstSettled) as ArteriaError;
    expect(reason.code).toBe('DEADLINE_EXCEEDED');
    expect(runner.stats().aborted).toBe(before.aborted + 2);
    expect(runner.stats().threadsAlive).toBe(before.threadsAlive - 1);
    expect(runner.stats().crashes).toBe(before.crashes);

    const already = AbortSignal.abort(new Error('gone before it started'));
    await expect(runner.run(algo('echo'), run(), { signal: already })).rejects.toThrow('gone before it started');
    expect((await runner.run(algo('echo'), run())).output).toMatchObject({ frames: 5 });
  });
});

describe('AlgorithmRunner lifecycle', () => {
  it('close() rejects pending work, terminates every thread and is memoised; a closed runner refuses work with ILLEGAL_STATE', async () => {
    const runner = new AlgorithmRunner({ threadsPerAlgorithm: 2 });
    await runner.warm(algo('echo'));
    expect(runner.stats().threadsAlive).toBe(2);
    const longSlow = await variant('slow', (m) => {
      m.resources = { ...m.resources, timeoutMs: 120_000 };
    });
    const pending = runner.run(longSlow, run());
    const settled = pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    await runner.warm(longSlow);
    expect(runner.stats().threadsAlive).toBe(4);

    const closing = runner.close();
    expect(runner.close()).toBe(closing);
    await closing;
    expect(runner.stats().threadsAlive).toBe(0);
    const err = (await settled) as ArteriaError;
    expect(err.code).toBe('INTERNAL');
    // Using a closed runner is a programming error, named as such (the task it held was retryable).
    expect(runner.state).toBe('closed');
    expect(await failure(runner.run(algo('echo'), run()))).toMatchObject({ code: 'ILLEGAL_STATE', message: 'the algorithm runner is closed: cannot run an algorithm' });
    expect((await failure(runner.warm(algo('echo')))).code).toBe('ILLEGAL_STATE');
    await runner.close();
  });

  it('disposes with await using', async () => {
    let outer: AlgorithmRunner | undefined;
    {
      await using runner = new AlgorithmRunner();
      outer = runner;
      await runner.run(algo('echo'), run());
      expect(runner.stats().threadsAlive).toBe(1);
    }
    expect(outer.stats().threadsAlive).toBe(0);
  });

  it('validates its options', () => {
    expect(() => new AlgorithmRunner({ threadsPerAlgorithm: 0 })).toThrow(/threadsPerAlgorithm/);
    expect(() => new AlgorithmRunner({ threadz: 2 } as never)).toThrow(/threadz/);
  });
});
