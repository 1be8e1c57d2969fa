import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ArteriaError, RequestV1, encodePayload, type AlgorithmRef } from '@arteria/protocol';
import { DeadLetterDesk, EntitlementPolicy, Ingest, type AlgorithmResolver } from '@arteria/ingest';
import { NatsWorkQueue } from '@arteria/engine-nats';
import { OpsHttpServer } from '@arteria/operations';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { encodeTask, type WorkQueue } from '@arteria/ports';
import { Registry } from 'prom-client';
import { TestNatsServer, testRequest } from '@arteria/testing';
import { runWorkerDry } from './support/dry-worker.js';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-dlq-'));
const nats = await TestNatsServer.start();
afterAll(async () => {
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
});

const SHA = 'c'.repeat(64);
const BROKEN: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const FIXED: AlgorithmRef = { name: 'echo', version: '1.0.1', digest: `sha256:${'e'.repeat(64)}` };
const TOKEN = 'dlq-test-ops-token-0123456789abcdef';
const TOPIC = { tenant: 'acme', device: 'dev1', kind: 'requests' as const };

/** The registry as admission sees it: the fixed release is installed part-way through a test. */
class Releases implements AlgorithmResolver {
  current = BROKEN;
  resolve(spec: string, enabled?: readonly string[]): { ref: AlgorithmRef } {
    if (!spec.startsWith('echo@')) throw new ArteriaError('UNKNOWN_ALGORITHM', spec);
    if (enabled?.length === 0) throw new ArteriaError('ALGORITHM_NOT_ENABLED', `${spec}: no version enabled`);
    return { ref: this.current };
  }
}


const request = (instanceUid: string): RequestV1 => testRequest(instanceUid, { tenant: 'acme', device: 'dev1', algorithm: 'echo@^1', sha256: SHA, size: 10, timings: { published: 1_000 } });

let streams = 0;
const engines: { name: string; open: () => Promise<WorkQueue> }[] = [
  { name: 'SQLite', open: () => Promise.resolve(new SqliteWorkQueue({ path: join(dir, `queue-${++streams}.db`), maxDeliveries: 2 })) },
  { name: 'NATS JetStream', open: () => NatsWorkQueue.open({ servers: nats.url, name: `DLQ${++streams}`, maxDeliveries: 2, pollIntervalMs: 20 }) },
];

describe.each(engines)('dead-letter tooling on $name', ({ open }) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(): Promise<{ queue: WorkQueue; ledger: SqliteRequestLedger; results: KeptResults; releases: Releases; ingest: Ingest; desk: DeadLetterDesk; computed: AlgorithmRef[]; runWorker: () => Promise<void> }> {
    const queue = await open();
    const ledger = new SqliteRequestLedger({ path: join(dir, `ledger-${++streams}.db`) });
    cleanups.push(() => queue.close(), () => ledger.close());
    const results = new KeptResults();
    const releases = new Releases();
    const ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: releases });
    const desk = new DeadLetterDesk({ queues: new Map([['cpu', queue]]), ledger, admission: { algorithms: releases, bucket: 'runs' } });
    const computed: AlgorithmRef[] = [];
    /** A worker that runs the queue dry: the broken release cannot read its input (retryable), the fixed one answers. */
    const runWorker = (): Promise<void> =>
      runWorkerDry({ queue, ledger, results }, (algorithm) => {
        computed.push(algorithm);
        if (algorithm.version === BROKEN.version) return Promise.reject(new ArteriaError('INFERENCE_UNAVAILABLE', 'model server down'));
        return Promise.resolve({ output: { version: algorithm.version } });
      });
    return { queue, ledger, results, releases, ingest, desk, computed, runWorker };
  }

  /** A task whose worker died mid-task on every delivery (SIGKILL, out of memory): dead-lettered with no result. */
  async function abandonUntilDead(queue: WorkQueue): Promise<string> {
    for (;;) {
      const [lease] = await queue.lease({ max: 1, visibilityMs: 50, waitMs: 1_000 });
      if (lease === undefined) break;
    }
    const [letter] = await queue.deadLetters(1);
    expect(letter).toBeDefined();
    return letter!.taskId;
  }

  it('a task whose workers kept dying is listed, shown, replayed once after the fix and answered exactly once', async () => {
    const { queue, results, releases, ingest, desk, computed, runWorker } = await setUp();
    const req = request('1.2.1');
    expect(await ingest.handle(TOPIC, encodePayload(req))).toMatchObject({ status: 'accepted' });
    const taskId = await abandonUntilDead(queue);

    const [listed] = await desk.list(10);
    expect(listed).toMatchObject({ taskId, deliveries: 2, request: { id: req.id, tenant: 'acme', device: 'dev1', algorithm: 'echo@^1' }, pinned: BROKEN, ledger: { state: 'accepted' } });
    expect(listed!.reason).toContain('max deliveries (2) exceeded');
    expect(listed!.at).toBeGreaterThanOrEqual(listed!.enqueuedAt);
    expect(await desk.show(taskId)).toEqual(listed);
    // The same view on the ops HTTP surface, behind the operator token.
    const http = new OpsHttpServer();
    cleanups.push(() => http.close());
    await http.start({ metrics: new Registry(), status: () => Promise.resolve({}), ready: () => true, dashboard: { devices: () => [], recent: () => Promise.resolve([]), latency: () => Promise.resolve([]), deadLetters: { list: (limit) => desk.list(limit), show: (id) => desk.show(id), replay: (id) => desk.replay(id) } } }, '127.0.0.1', 0, { token: TOKEN, onRefused: () => undefined });
    expect((await fetch(`${http.url}/api/dead-letters`)).status).toBe(401);
    const served = await fetch(`${http.url}/api/dead-letters?limit=5`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await served.json()).toEqual({ deadLetters: [JSON.parse(JSON.stringify(listed)) as unknown], replay: true });
    const shown = await fetch(`${http.url}/api/dead-letters/${encodeURIComponent(taskId)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await shown.json()).toEqual(JSON.parse(JSON.stringify(listed)) as unknown);

    // Replayed from the ops surface, as the dashboard's replay button does (POST).
    releases.current = FIXED;
    const replayUrl = `${http.url}/api/dead-letters/${encodeURIComponent(taskId)}/replay`;
    const outcome = await fetch(replayUrl, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(outcome.status).toBe(200);
    expect(await outcome.json()).toMatchObject({ taskId, requestId: req.id, status: 'replayed', algorithm: FIXED });
    const again = await fetch(replayUrl, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ error: { code: 'DEAD_LETTER_NOT_FOUND' } });
    expect(await desk.list(10)).toEqual([]);
    await expect(desk.replay(taskId)).rejects.toMatchObject({ code: 'DEAD_LETTER_NOT_FOUND' });
    await expect(desk.show(taskId)).rejects.toMatchObject({ code: 'DEAD_LETTER_NOT_FOUND' });

    await runWorker();
    expect(computed).toEqual([FIXED]);
    expect(results.published.map((r) => [r.requestId, r.status, r.algorithm?.version])).toEqual([[req.id, 'ok', FIXED.version]]);
  });

  it('a task already answered (DEAD_LETTERED after its last retry) is cleared, never computed again', async () => {
    const { results, ingest, desk, computed, releases, runWorker } = await setUp();
    const req = request('1.2.2');
    await ingest.handle(TOPIC, encodePayload(req));
    await runWorker();
    expect(computed).toEqual([BROKEN, BROKEN]);
    expect(results.published.map((r) => r.error?.code)).toEqual(['DEAD_LETTERED']);
    const [letter] = await desk.list(10);
    expect(letter).toMatchObject({ ledger: { state: 'completed', status: 'failed', errorCode: 'DEAD_LETTERED' } });

    releases.current = FIXED;
    expect(await desk.replay(letter!.taskId)).toMatchObject({ status: 'already-completed', result: 'failed', requestId: req.id });
    await runWorker();
    expect(computed).toEqual([BROKEN, BROKEN]);
    expect(results.published).toHaveLength(1);
    expect(await desk.list(10)).toEqual([]);
  });

  it('a replay admission refuses keeps the letter; a replay interrupted before removal queues nothing twice', async () => {
    const { queue, ledger, results, releases, ingest, computed, runWorker } = await setUp();
    const req = request('1.2.3');
    await ingest.handle(TOPIC, encodePayload(req));
    const taskId = await abandonUntilDead(queue);
    releases.current = FIXED;
    const revoked = new DeadLetterDesk({ queues: new Map([['cpu', queue]]), ledger, admission: { algorithms: releases, bucket: 'runs', entitlements: EntitlementPolicy.parse({ acme: { algorithms: ['other'] } }) } });
    await expect(revoked.replay(taskId)).rejects.toMatchObject({ code: 'ALGORITHM_NOT_ENABLED' });
    expect((await revoked.list(10)).map((l) => l.taskId)).toEqual([taskId]);

    // The removal fails once (the queue went away after the task was queued again).
    let failRemoval = true;
    const flaky = new Proxy(queue, {
      get(target, prop: keyof WorkQueue) {
        if (prop === 'removeDeadLetter' && failRemoval) {
          failRemoval = false;
          return () => Promise.reject(new ArteriaError('QUEUE_UNAVAILABLE', 'gone for a moment'));
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const desk = new DeadLetterDesk({ queues: new Map([['cpu', flaky]]), ledger, admission: { algorithms: releases, bucket: 'runs' } });
    await expect(desk.replay(taskId)).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
    const again = await desk.replay(taskId);
    expect(again).toMatchObject({ status: 'replayed' });
    expect(await queue.stats()).toMatchObject({ ready: 1, deadLettered: 0 });
    await runWorker();
    expect(computed).toEqual([FIXED]);
    expect(results.published).toHaveLength(1);
  });

  it('an unreadable task cannot be replayed; show says why; an unknown id is DEAD_LETTER_NOT_FOUND', async () => {
    const { queue, desk } = await setUp();
    await queue.enqueue(Buffer.from('not a task'), { dedupeId: 'garbage' });
    const [lease] = await queue.lease({ max: 1, visibilityMs: 10_000, waitMs: 1_000 });
    await queue.deadLetter(lease!, 'undecodable task');
    const shown = await desk.show(lease!.taskId);
    expect(shown).toMatchObject({ taskId: lease!.taskId, reason: 'undecodable task' });
    expect(shown.unreadable).toContain('not a task this platform can read');
    expect(shown.request).toBeUndefined();
    await expect(desk.replay(lease!.taskId)).rejects.toMatchObject({ code: 'DEAD_LETTER_UNREADABLE' });
    await expect(desk.show('424242')).rejects.toMatchObject({ code: 'DEAD_LETTER_NOT_FOUND' });
    expect(await desk.replayAll()).toMatchObject({ outcomes: [], refused: [{ taskId: lease!.taskId, code: 'DEAD_LETTER_UNREADABLE' }] });
  });

  it('lists the letters of every worker pool with their pool and replays each into its own pool', async () => {
    const { queue: cpu, ledger, releases, ingest } = await setUp();
    const gpu = await open();
    cleanups.push(() => gpu.close());
    const cpuRequest = request('1.2.5');
    await ingest.handle(TOPIC, encodePayload(cpuRequest));
    const cpuTask = await abandonUntilDead(cpu);
    const gpuRequest = request('1.2.6');
    await ledger.recordAccepted({ requestId: gpuRequest.id, tenant: 'acme', device: 'dev1', algorithm: gpuRequest.algorithm, acceptedAt: 2_000, request: gpuRequest });
    await gpu.enqueue(encodeTask({ v: 1, request: gpuRequest, algorithm: BROKEN }), { dedupeId: gpuRequest.id });
    const gpuTask = await abandonUntilDead(gpu);
    const desk = new DeadLetterDesk({ queues: new Map([['cpu', cpu], ['gpu', gpu]]), ledger, admission: { algorithms: releases, bucket: 'runs' } });

    const listed = await desk.list(10);
    // Task ids are each queue's own, so those of other pools than the first carry their pool.
    expect(listed.map((l) => [l.taskId, l.pool, l.request?.id])).toEqual(expect.arrayContaining([[cpuTask, 'cpu', cpuRequest.id], [`gpu:${gpuTask}`, 'gpu', gpuRequest.id]]));
    expect(listed).toHaveLength(2);
    expect(await desk.show(`gpu:${gpuTask}`)).toMatchObject({ pool: 'gpu', request: { id: gpuRequest.id } });
    expect(await desk.show(cpuTask)).toMatchObject({ pool: 'cpu', request: { id: cpuRequest.id } });

    releases.current = FIXED;
    expect((await desk.replayAll()).outcomes.map((o) => o.status)).toEqual(['replayed', 'replayed']);
    expect(await gpu.stats()).toMatchObject({ ready: 1, deadLettered: 0 });
    expect(await cpu.stats()).toMatchObject({ ready: 1, deadLettered: 0 });
  });
});
