// A segmented run's state kept live in the algorithm's thread between steps: the steps of
// a run fold from it without a checkpoint's decoding; a step that finds it gone (evicted,
// released, another run in its place) folds from the checkpoint with the same output; two
// runs on one thread keep their own states; the thread's budget holds.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SqliteRequestLedger, SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { MAX_SEGMENT_BYTES, type PartialResultV1 } from '@arteria/protocol';
import type { ResultPublisher, TaskV1 } from '@arteria/ports';
import { runAlgorithmOnDicom, type Algorithm } from '@arteria/sdk';
import { tempDir } from '@arteria/testing';
import { AlgorithmRegistry, IncrementalRunner, SegmentedSteps, registryIncremental, type IncrementalRunnerOptions, type RegisteredAlgorithm, type StepOutcome } from '@arteria/worker';
import { CONTRAST_INJECTION, cut, objectInputs, type CutRun } from './support/segmented-cut.js';

describe('segmented runs: the state kept live in the algorithm thread', () => {
  let registry: AlgorithmRegistry;
  let contrast: RegisteredAlgorithm;
  let algorithm: Algorithm;
  const closers: (() => Promise<void>)[] = [];
  let uid = 0;

  beforeAll(async () => {
    registry = await AlgorithmRegistry.load([CONTRAST_INJECTION]);
    [contrast] = registry.list() as [RegisteredAlgorithm];
    ({ default: algorithm } = (await import(pathToFileURL(contrast.entryPath).href)) as { default: Algorithm });
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  interface Setup {
    steps: SegmentedSteps;
    runner: IncrementalRunner;
    checkpoints: SqliteRunCheckpoints;
    ledger: SqliteRequestLedger;
    run: (seed: number) => CutRun;
    partials: PartialResultV1[];
    handle: (task: TaskV1) => Promise<StepOutcome>;
    /** Another worker (its own runner and steps) on the same checkpoints, objects and device. */
    another: (options?: Options) => Setup;
  }
  type Options = IncrementalRunnerOptions & { checkpointEveryMs?: number };

  /** Steps over a fresh checkpoint file and runner; the objects of every run cut for it; the partial results it published. */
  async function setup(options: Options = {}): Promise<Setup> {
    const tmp = await tempDir('segmented-live');
    const checkpoints = new SqliteRunCheckpoints({ path: path.join(tmp.dir, 'checkpoints.db') });
    const ledger = new SqliteRequestLedger({ path: path.join(tmp.dir, 'checkpoints.db'), checkpointIntervalMs: 0 });
    closers.push(() => tmp.remove(), () => checkpoints.close(), () => ledger.close());
    return worker(checkpoints, ledger, new Map(), [], options);
  }

  function worker(checkpoints: SqliteRunCheckpoints, ledger: SqliteRequestLedger, objects: Map<string, Uint8Array>, partials: PartialResultV1[], options: Options): Setup {
    const { checkpointEveryMs, ...runnerOptions } = options;
    const runner = new IncrementalRunner(runnerOptions);
    closers.push(() => runner.close());
    const inputs = objectInputs(objects);
    const results: ResultPublisher = { publish: () => Promise.resolve(), publishPartial: (p) => Promise.resolve(void partials.push(p)), close: () => Promise.resolve() };
    const steps = new SegmentedSteps({ checkpoints, ledger, incremental: registryIncremental(registry, runner), inputs, results, maxInputBytes: 1 << 30, ...(checkpointEveryMs === undefined ? {} : { checkpointEveryMs }) });
    const run = (seed: number): CutRun => {
      const r = cut(seed, `1.2.826.0.1.3680043.10.15.${++uid}`, contrast);
      for (const [uri, bytes] of r.objects) objects.set(uri, bytes);
      return r;
    };
    const handle = async (task: TaskV1): Promise<StepOutcome> => {
      const outcome = await steps.handle(task, new AbortController().signal);
      // As the worker delivers: recorded, then forgotten.
      if (outcome.kind === 'final') {
        await ledger.recordResult(outcome.result);
        await steps.forget(task);
      }
      return outcome;
    };
    return { steps, runner, checkpoints, ledger, run, partials, handle, another: (more = {}) => worker(checkpoints, ledger, objects, partials, more) };
  }

  const outputOf = (outcome: StepOutcome): unknown => {
    if (outcome.kind !== 'final') throw new Error('the run did not end');
    expect(outcome.result.status).toBe('ok');
    return outcome.result.output;
  };
  const oneShot = async (bytes: Uint8Array): Promise<unknown> => JSON.parse(JSON.stringify(await runAlgorithmOnDicom(algorithm, bytes))) as unknown;
  const keysOf = (partials: PartialResultV1[], id: string): string[] => partials.filter((p) => p.requestId === id).map((p) => p.event.key);

  it('folds every step of a run from the live state (no checkpoint decoded, none written but for the partial result), with the one-shot output and each partial result once', async () => {
    const { runner, checkpoints, run, partials, handle } = await setup({ checkpointEveryMs: 60_000 });
    const r = run(61);
    expect((await handle(r.open)).kind).toBe('settled');
    for (const segment of r.segments) expect((await handle(segment)).kind).toBe('settled');
    // Written twice: the open, and the fold that brought the partial result (recorded before it is published).
    expect(runner.stats().encodes).toBe(2);
    const stored = await checkpoints.get(r.open.request.id);
    expect(stored?.events.map((e) => e.event.key)).toEqual(['contrast-arrival']);
    expect(stored?.next).toBeLessThan(r.segments.length);
    const output = outputOf(await handle(r.end));
    expect(output).toEqual(await oneShot(r.bytes));
    expect(runner.stats().decodes).toBe(0);
    expect(runner.stats().encodes).toBe(2);
    expect(keysOf(partials, r.open.request.id)).toEqual(['contrast-arrival']);
    // Finished: the thread keeps nothing of the run.
    expect(runner.stats().liveRuns).toBe(0);
  });

  it('writes the checkpoint after every segment when checkpointEveryMs is 0, and once its time is up when no further step comes', async () => {
    const every = await setup({ checkpointEveryMs: 0 });
    const r = every.run(73);
    await every.handle(r.open);
    for (const segment of r.segments) await every.handle(segment);
    expect(every.runner.stats().encodes).toBe(1 + r.segments.length);
    expect(outputOf(await every.handle(r.end))).toEqual(await oneShot(r.bytes));
    expect(every.runner.stats().decodes).toBe(0);

    const idle = await setup({ checkpointEveryMs: 300 });
    const q = idle.run(74);
    await idle.handle(q.open);
    for (const segment of q.segments.slice(0, 3)) await idle.handle(segment);
    await vi.waitFor(async () => expect((await idle.checkpoints.get(q.open.request.id))?.next).toBe(3), { timeout: 10_000, interval: 50 });
    for (const segment of q.segments.slice(3)) await idle.handle(segment);
    expect(outputOf(await idle.handle(q.end))).toEqual(await oneShot(q.bytes));
    expect(idle.runner.stats().decodes).toBe(0);
  });

  it('another worker takes a run whose last folds were not written: it folds them again from the checkpoint, with the same output and no partial result twice', async () => {
    const first = await setup({ checkpointEveryMs: 60_000 });
    const r = first.run(61);
    await first.handle(r.open);
    // Up to the partial result (written, then published), and two segments more, not written.
    let handed = 0;
    while (keysOf(first.partials, r.open.request.id).length === 0) await first.handle(r.segments[handed++]!);
    for (const segment of r.segments.slice(handed, handed + 2)) await first.handle(segment);
    handed += 2;
    expect(handed).toBeLessThan(r.segments.length);
    expect((await first.checkpoints.get(r.open.request.id))?.next).toBe(handed - 2);
    const second = first.another({ checkpointEveryMs: 60_000 });
    for (const segment of r.segments.slice(handed)) expect((await second.handle(segment)).kind).toBe('settled');
    expect(outputOf(await second.handle(r.end))).toEqual(await oneShot(r.bytes));
    expect(second.runner.stats().decodes).toBe(1);
    expect(keysOf(first.partials, r.open.request.id)).toEqual(['contrast-arrival']);
  });

  it('a run whose live state is gone (evicted, released) carries on from its checkpoint: one decode, the same output, no partial result twice', async () => {
    const { runner, run, partials, handle } = await setup();
    const r = run(62);
    await handle(r.open);
    for (const segment of r.segments.slice(0, 4)) await handle(segment);
    runner.release(contrast, `${r.open.request.tenant}\0${r.open.request.id}`);
    for (const segment of r.segments.slice(4)) await handle(segment);
    expect(outputOf(await handle(r.end))).toEqual(await oneShot(r.bytes));
    expect(runner.stats().decodes).toBe(1);
    expect(keysOf(partials, r.open.request.id)).toEqual(['contrast-arrival']);
  });

  it('with no room for live states every step goes through the checkpoint, with the same output', async () => {
    const { runner, run, partials, handle } = await setup({ liveStates: { maxBytes: 0 } });
    const r = run(63);
    await handle(r.open);
    for (const segment of r.segments) await handle(segment);
    expect(outputOf(await handle(r.end))).toEqual(await oneShot(r.bytes));
    // Every segment and the finish restored the state from bytes.
    expect(runner.stats().decodes).toBe(r.segments.length + 1);
    expect(runner.stats().liveRuns).toBe(0);
    expect(keysOf(partials, r.open.request.id)).toEqual(['contrast-arrival']);
  });

  it('two runs interleaved on one thread keep their own states', async () => {
    const { runner, run, partials, handle } = await setup();
    const a = run(64);
    const b = run(65);
    await handle(a.open);
    await handle(b.open);
    for (let i = 0; i < a.segments.length; i++) {
      await handle(a.segments[i]!);
      await handle(b.segments[i]!);
      expect(runner.stats().liveRuns).toBe(2);
    }
    expect(outputOf(await handle(b.end))).toEqual(await oneShot(b.bytes));
    expect(outputOf(await handle(a.end))).toEqual(await oneShot(a.bytes));
    expect(await oneShot(a.bytes)).not.toEqual(await oneShot(b.bytes));
    expect(runner.stats().decodes).toBe(0);
    expect(keysOf(partials, a.open.request.id)).toEqual(['contrast-arrival']);
    expect(keysOf(partials, b.open.request.id)).toEqual(['contrast-arrival']);
  });

  it('keeps no more live states than its budget: runs evicting each other fold from their checkpoints, with the right outputs', async () => {
    const { runner, run, handle } = await setup({ liveStates: { maxRuns: 1 }, checkpointEveryMs: 0 });
    const a = run(66);
    const b = run(67);
    await handle(a.open);
    await handle(b.open);
    for (let i = 0; i < a.segments.length; i++) {
      await handle(a.segments[i]!);
      await handle(b.segments[i]!);
      expect(runner.stats().liveRuns).toBe(1);
    }
    expect(outputOf(await handle(a.end))).toEqual(await oneShot(a.bytes));
    expect(outputOf(await handle(b.end))).toEqual(await oneShot(b.bytes));
    // Each evicted the other at every step: every segment of both, and a's finish, from bytes.
    expect(runner.stats().decodes).toBe(2 * a.segments.length + 1);
  });

  it('a worker behind on two runs at once, with room for one live state: folds lost to eviction are done again from the checkpoint', async () => {
    const { runner, run, partials, handle } = await setup({ liveStates: { maxRuns: 1 } });
    const a = run(68);
    const b = run(69);
    await handle(a.open);
    await handle(b.open);
    // Every segment but the first parked, then the end: each run's first segment drains the whole run.
    for (const r of [a, b]) {
      for (const segment of r.segments.slice(1)) expect((await handle(segment)).kind).toBe('settled');
      expect((await handle(r.end)).kind).toBe('settled');
    }
    const [outA, outB] = await Promise.all([handle(a.segments[0]!), handle(b.segments[0]!)]);
    expect(outputOf(outA)).toEqual(await oneShot(a.bytes));
    expect(outputOf(outB)).toEqual(await oneShot(b.bytes));
    expect(runner.stats().decodes).toBeGreaterThan(0);
    expect(runner.stats().liveRuns).toBeLessThanOrEqual(1);
    expect(keysOf(partials, a.open.request.id)).toEqual(['contrast-arrival']);
    expect(keysOf(partials, b.open.request.id)).toEqual(['contrast-arrival']);
  });

  it('holds the live states within their byte budget', async () => {
    // contrast-injection's state for 64x64 frames: well under 64 KiB; a budget of one state's size keeps one.
    const { runner, run, handle } = await setup();
    const a = run(70);
    await handle(a.open);
    await handle(a.segments[0]!);
    const one = runner.stats().liveBytes;
    expect(one).toBeGreaterThan(0);
    const bounded = await setup({ liveStates: { maxBytes: Math.ceil(one * 1.5) } });
    const c = bounded.run(71);
    const d = bounded.run(72);
    await bounded.handle(c.open);
    await bounded.handle(d.open);
    for (let i = 0; i < c.segments.length; i++) {
      await bounded.handle(c.segments[i]!);
      await bounded.handle(d.segments[i]!);
      expect(bounded.runner.stats().liveBytes).toBeLessThanOrEqual(Math.ceil(one * 1.5));
      expect(bounded.runner.stats().liveRuns).toBeLessThanOrEqual(1);
    }
    expect(outputOf(await bounded.handle(c.end))).toEqual(await oneShot(c.bytes));
    expect(outputOf(await bounded.handle(d.end))).toEqual(await oneShot(d.bytes));
  });

  it('refuses a segment task larger than a segment may be INPUT_TOO_LARGE before reading it (a task does not prove it came through ingest)', async () => {
    const { run, handle } = await setup();
    const r = run(75);
    await handle(r.open);
    const [first] = r.segments;
    if (first?.segmented?.phase !== 'segment') throw new Error('not a segment');
    const huge: TaskV1 = { ...first, segmented: { ...first.segmented, object: { ...first.segmented.object, size: MAX_SEGMENT_BYTES + 1 } } };
    await expect(handle(huge)).rejects.toMatchObject({ code: 'INPUT_TOO_LARGE' });
  });

  it("an idle look reads the store as well as the run in hand: another worker's folds count, and a stale hand's parked segment does not keep the run alive", async () => {
    const a = await setup({ checkpointEveryMs: 0 });
    const b = a.another({ checkpointEveryMs: 0 });
    const r = a.run(76);
    await a.handle(r.open);
    for (const segment of r.segments.slice(0, 3)) await a.handle(segment);
    expect(await a.steps.progress(r.open, 0)).toEqual({ moved: true, next: 3 });
    // Another worker takes the run on from the store; this one's hand stays at 3.
    for (const segment of r.segments.slice(3, 6)) await b.handle(segment);
    expect((await a.checkpoints.get(r.open.request.id))?.next).toBe(6);
    expect(await a.steps.progress(r.open, 3)).toEqual({ moved: true, next: 6 });
    // Nothing since: idle, though segment 3 is still parked (it is folded).
    expect(await a.steps.progress(r.open, 6)).toEqual({ moved: false, next: 6 });
    // A segment parked for the next fold is the platform's work pending, not the device's silence.
    await a.checkpoints.park(r.open.request.id, r.segments[6]!.segmented as Extract<NonNullable<TaskV1['segmented']>, { phase: 'segment' }>);
    expect(await a.steps.progress(r.open, 6)).toEqual({ moved: true, next: 6 });
  });

  it('a step that reaches a worker after another finished the run (it looked at the ledger before the result was recorded) is dropped: nothing parked or created, no second result or partial', async () => {
    const a = await setup({ checkpointEveryMs: 0 });
    const b = a.another({ checkpointEveryMs: 0 });
    const r = a.run(77);
    const id = r.open.request.id;
    await a.handle(r.open);
    for (const segment of r.segments) await a.handle(segment);
    expect(outputOf(await a.handle(r.end))).toEqual(await oneShot(r.bytes));
    expect((await a.ledger.get(id))?.state).toBe('completed');
    const published = keysOf(a.partials, id);
    expect(published).toEqual(['contrast-arrival']);

    // Late copies of the run's steps, each on the other worker: none brings the run back.
    for (const late of [r.segments[3]!, r.end, r.open, r.segments[0]!]) {
      const outcome = await b.handle(late);
      const phase = late.segmented?.phase;
      expect(await b.checkpoints.get(id), phase).toBeUndefined();
      expect(await b.checkpoints.parked(id, 3), phase).toBeUndefined();
      expect(await b.checkpoints.parked(id, 0), phase).toBeUndefined();
      expect(await b.checkpoints.parked(id, 'end'), phase).toBeUndefined();
      expect(outcome.kind, phase).toBe('answered');
      expect(b.steps.runsInHand, phase).toBe(0);
    }
    expect(b.steps.runsInHand).toBe(0);
    // The late open's live state is let go of too: the thread's next answer (another run's open) reports that run's state only.
    await b.handle(b.run(79).open);
    expect(b.runner.stats().liveRuns).toBe(1);
    expect(keysOf(a.partials, id)).toEqual(published);
  });

  it("a late step reaching a worker that still holds the run in hand (another worker finished it from the store) is dropped too: the stale hand brings nothing back", async () => {
    const a = await setup({ checkpointEveryMs: 0 });
    const b = a.another({ checkpointEveryMs: 0 });
    const r = a.run(78);
    const id = r.open.request.id;
    await b.handle(r.open);
    for (const segment of r.segments.slice(0, 3)) await b.handle(segment);
    expect(b.steps.runsInHand).toBe(1);
    for (const segment of r.segments.slice(3)) await a.handle(segment);
    expect(outputOf(await a.handle(r.end))).toEqual(await oneShot(r.bytes));
    const published = keysOf(a.partials, id);

    // Ahead of the hand (left waiting for a fold that never comes), then the hand's very next segment (its write finds the run gone).
    for (const late of [r.segments[5]!, r.segments[3]!]) {
      const outcome = await b.handle(late);
      expect(await b.checkpoints.parked(id, 5)).toBeUndefined();
      expect(await b.checkpoints.parked(id, 3)).toBeUndefined();
      expect(await b.checkpoints.get(id)).toBeUndefined();
      expect(outcome.kind).toBe('answered');
    }
    expect(b.steps.runsInHand).toBe(0);
    expect(keysOf(a.partials, id)).toEqual(published);
  });
});
