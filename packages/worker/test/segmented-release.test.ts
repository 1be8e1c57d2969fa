// The end of a segmented run: its checkpoint is removed after the result is published and
// before the end step is acknowledged. A worker that stops in between (killed, hung on its
// store) leaves the step to come back, and its next delivery removes the checkpoint; a
// removal that fails for a moment is tried again. Either way the device gets one result
// and nothing of the run stays in the store.
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SqliteRequestLedger, SqliteRunCheckpoints, SqliteWorkQueue } from '@arteria/engine-sqlite';
import type { PartialResultV1, ResultV1 } from '@arteria/protocol';
import { encodeTask, segmentedDedupeId, type ResultPublisher, type RunCheckpointStore, type TaskV1 } from '@arteria/ports';
import { tempDir } from '@arteria/testing';
import { AlgorithmRegistry, IncrementalRunner, SegmentedSteps, Worker, registryIncremental, type RegisteredAlgorithm } from '@arteria/worker';
import { CONTRAST_INJECTION, cut, objectInputs, type CutRun } from './support/segmented-cut.js';

const VISIBILITY_MS = 1_500;

/** The store with another `remove`. */
function withRemove(store: RunCheckpointStore, remove: (requestId: string) => Promise<void>): RunCheckpointStore {
  return {
    get: (id) => store.get(id),
    create: (c) => store.create(c),
    advance: (from, c) => store.advance(from, c),
    markPublished: (id, count) => store.markPublished(id, count),
    park: (id, step) => store.park(id, step),
    parked: (id, key) => store.parked(id, key),
    remove,
    close: () => store.close(),
  };
}

describe('segmented runs: the checkpoint goes before the end step is acknowledged', () => {
  let registry: AlgorithmRegistry;
  let contrast: RegisteredAlgorithm;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    registry = await AlgorithmRegistry.load([CONTRAST_INJECTION]);
    [contrast] = registry.list() as [RegisteredAlgorithm];
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** The queue, ledger and store the workers share (one SQLite file), what they published and the runs' objects. */
  interface Platform {
    queue: SqliteWorkQueue;
    ledger: SqliteRequestLedger;
    checkpoints: SqliteRunCheckpoints;
    published: ResultV1[];
    objects: Map<string, Uint8Array>;
  }

  async function platform(): Promise<Platform> {
    const tmp = await tempDir('segmented-release');
    const file = path.join(tmp.dir, 'platform.db');
    const queue = new SqliteWorkQueue({ path: file, maxDeliveries: 5 });
    const ledger = new SqliteRequestLedger({ path: file, checkpointIntervalMs: 0 });
    const checkpoints = new SqliteRunCheckpoints({ path: file });
    closers.push(() => tmp.remove(), () => queue.close(), () => ledger.close(), () => checkpoints.close());
    return { queue, ledger, checkpoints, published: [], objects: new Map() };
  }

  /** A worker with its own algorithm thread over the shared queue, ledger and store. */
  function worker(p: Platform, checkpoints: RunCheckpointStore, errors: Error[]): Worker {
    const runner = new IncrementalRunner();
    const partials: PartialResultV1[] = [];
    const results: ResultPublisher = { publish: (r) => Promise.resolve(void p.published.push(r)), publishPartial: (e) => Promise.resolve(void partials.push(e)), close: () => Promise.resolve() };
    const inputs = objectInputs(p.objects);
    const segmented = new SegmentedSteps({ checkpoints, ledger: p.ledger, incremental: registryIncremental(registry, runner), inputs, results, maxInputBytes: 1 << 30 });
    const w = new Worker(
      { queue: p.queue, ledger: p.ledger, results, inputs, executor: { execute: () => Promise.reject(new Error('a whole-file run')) }, segmented, onError: (e) => errors.push(e) },
      { visibilityMs: VISIBILITY_MS, leaseWaitMs: 50, maxInputBytes: 1 << 30, maxDeliveries: 5 },
    );
    closers.push(() => runner.close(), () => w.drain());
    return w;
  }

  async function send(p: Platform, seed: number, uid: string): Promise<{ run: CutRun; endId: string }> {
    const run = cut(seed, uid, contrast);
    for (const [uri, bytes] of run.objects) p.objects.set(uri, bytes);
    for (const task of [run.open, ...run.segments, run.end] as TaskV1[]) await p.queue.enqueue(encodeTask(task), { dedupeId: segmentedDedupeId(task.request.id, task.segmented!) });
    return { run, endId: segmentedDedupeId(run.end.request.id, run.end.segmented!) };
  }

  it('a worker that stops after publishing and before acknowledging: the end step comes back, and its next delivery removes the checkpoint; one result', { timeout: 60_000 }, async () => {
    const p = await platform();
    const { run, endId } = await send(p, 81, '1.2.826.0.1.3680043.10.16.1');
    const id = run.end.request.id;
    // The first worker never gets past removing the checkpoint (as if it were killed there).
    let unblock = (): void => undefined;
    const stuck = new Promise<void>((resolve) => (unblock = resolve));
    const first = worker(p, withRemove(p.checkpoints, () => stuck), []);
    closers.push(() => Promise.resolve(unblock()));
    first.start();
    await vi.waitFor(() => expect(p.published).toHaveLength(1), { timeout: 30_000, interval: 25 });
    expect(p.published[0]!.status).toBe('ok');
    expect(await p.queue.pending(endId)).toBe(true);
    expect(await p.checkpoints.get(id)).toBeDefined();

    // Another worker takes the end step once its lease has run out.
    const errors: Error[] = [];
    const second = worker(p, p.checkpoints, errors);
    second.start();
    await vi.waitFor(async () => expect(await p.queue.pending(endId)).toBe(false), { timeout: 30_000, interval: 50 });
    expect(await p.checkpoints.get(id)).toBeUndefined();
    expect(await p.checkpoints.parked(id, 'end')).toBeUndefined();
    // Published already: acknowledged only, never published or computed again.
    expect(p.published.map((r) => r.requestId)).toEqual([id]);
    expect(errors).toEqual([]);
  });

  it('a removal that fails for a moment is tried again before the end step is acknowledged; one result', { timeout: 60_000 }, async () => {
    const p = await platform();
    const { run, endId } = await send(p, 82, '1.2.826.0.1.3680043.10.16.2');
    const id = run.end.request.id;
    let failures = 0;
    const errors: Error[] = [];
    const w = worker(
      p,
      withRemove(p.checkpoints, (requestId) => (failures++ === 0 ? Promise.reject(new Error('database is locked')) : p.checkpoints.remove(requestId))),
      errors,
    );
    w.start();
    await vi.waitFor(async () => expect(await p.queue.pending(endId)).toBe(false), { timeout: 30_000, interval: 25 });
    // Settled means released: nothing of the run is left in the store.
    expect(await p.checkpoints.get(id)).toBeUndefined();
    expect(failures).toBe(2);
    expect(p.published.map((r) => [r.requestId, r.status])).toEqual([[id, 'ok']]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining('could not release the run (database is locked)')]);
  });
});
