import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ArteriaError, type AlgorithmRef, type ResultV1 } from '@arteria/protocol';
import { acceptedOf, testRequest } from '@arteria/testing';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { Worker } from '@arteria/worker';
import { encodeTask, type InputSource, type Lease, type RecordedResult, type ResultProvenance } from '@arteria/ports';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-lease-hold-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const VISIBILITY_MS = 600;

const inputs: InputSource = {
  fetch: () => Promise.reject(new ArteriaError('INTERNAL', 'not used')),
  async *stream() {
    yield await Promise.resolve(Buffer.alloc(10));
  },
};
const executor = { execute: (): Promise<{ output: unknown }> => Promise.resolve({ output: { answered: true } }) };

/** A real queue that counts lease extensions; the first `lostAnswers` of them answer LEASE_LOST (the lease ran out during an outage). */
class CountingQueue extends SqliteWorkQueue {
  extensions = 0;
  lostAnswers = 0;
  override extend(lease: Lease, visibilityMs: number): Promise<void> {
    this.extensions += 1;
    if (this.lostAnswers > 0) {
      this.lostAnswers -= 1;
      return Promise.reject(new ArteriaError('LEASE_LOST', `cannot extend task ${lease.taskId}: its lease passed to another worker`));
    }
    return super.extend(lease, visibilityMs);
  }
}

/** A real ledger whose first recording takes `delayMs` (a slow disk, a ledger outage being retried). */
class SlowLedger extends SqliteRequestLedger {
  delayMs = 0;
  override async recordResult(result: ResultV1, provenance?: ResultProvenance): Promise<RecordedResult> {
    const delayMs = this.delayMs;
    this.delayMs = 0;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return super.recordResult(result, provenance);
  }
}

async function setUp(name: string, visibilityMs = VISIBILITY_MS): Promise<{ queue: CountingQueue; ledger: SlowLedger; results: KeptResults; worker: Worker; requestId: string }> {
  const queue = new CountingQueue({ path: join(dir, `${name}-queue.db`), maxDeliveries: 3 });
  const ledger = new SlowLedger({ path: join(dir, `${name}-ledger.db`) });
  const results = new KeptResults();
  const request = testRequest('1.5', { tenant: 'acme', device: 'dev1', algorithm: 'echo@^1', sha256: 'e'.repeat(64), size: 10, timings: { published: 1_000 } });
  await ledger.recordAccepted(acceptedOf(request, 1_000));
  await queue.enqueue(encodeTask({ v: 1, request, algorithm: REF }), { dedupeId: request.id });
  const worker = new Worker({ queue, ledger, results, inputs, executor }, { visibilityMs, leaseWaitMs: 50, maxInputBytes: 1 << 20, maxDeliveries: 3 });
  return { queue, ledger, results, worker, requestId: request.id };
}

describe('worker that knows how long it holds its lease', () => {
  it('publishes a quick task without asking the queue about its lease again', async () => {
    // A 10 s lease: the task is done well inside half of it even on a busy machine (half of
    // 600 ms could pass while it runs, and the worker would rightly ask the queue).
    const { queue, ledger, results, worker, requestId } = await setUp('quick', 10_000);
    try {
      worker.start();
      await vi.waitFor(async () => expect((await queue.stats()).ready + (await queue.stats()).inFlight).toBe(0), { timeout: 10_000, interval: 20 });
      expect(results.published.map((r) => r.requestId)).toEqual([requestId]);
      // Leased a moment ago for 10 s: the lease is surely still held, so no extension was asked for.
      expect(queue.extensions).toBe(0);
    } finally {
      await worker.drain();
      await queue.close();
      await ledger.close();
    }
  });

  it('asks the queue once recording took more than half the lease, and leaves the result to the next delivery when the lease is gone', async () => {
    const { queue, ledger, results, worker, requestId } = await setUp('slow');
    ledger.delayMs = 400; // past half of the 600 ms lease: the worker no longer knows it holds it
    queue.lostAnswers = 1; // and the queue says another delivery holds it now
    try {
      worker.start();
      await vi.waitFor(() => expect(queue.extensions).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 10 });
      // The delivery that lost its lease publishes nothing; the result is recorded, unpublished.
      expect(results.published).toEqual([]);
      // The next delivery (after the visibility timeout) publishes the recorded result, once.
      await vi.waitFor(() => expect(results.published).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(results.published.map((r) => [r.requestId, r.output])).toEqual([[requestId, { answered: true }]]);
      expect((await ledger.get(requestId))?.publishedAt).toBeTypeOf('number');
    } finally {
      await worker.drain();
      await queue.close();
      await ledger.close();
    }
  });
});
