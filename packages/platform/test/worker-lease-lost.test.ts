import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ArteriaError, type AlgorithmRef } from '@arteria/protocol';
import { acceptedOf, testRequest } from '@arteria/testing';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { Worker } from '@arteria/worker';
import { encodeTask, type InputSource, type Lease } from '@arteria/ports';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-lease-lost-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };

/** One chunk, then nothing until the computation is called off. */
const slowInputs: InputSource = {
  fetch: () => Promise.reject(new ArteriaError('INTERNAL', 'not used')),
  async *stream(_input, options) {
    yield Buffer.alloc(10);
    await new Promise((resolve) => options.signal?.addEventListener('abort', resolve, { once: true }));
  },
};

/** A real queue whose lease extensions fail as they do once the lease passed to another worker (a stalled process, a queue outage). */
class LeaseTakenQueue extends SqliteWorkQueue {
  extensions = 0;
  override extend(lease: Lease, visibilityMs: number): Promise<void> {
    this.extensions += 1;
    if (this.extensions >= 2) return Promise.reject(new ArteriaError('LEASE_LOST', `cannot extend task ${lease.taskId}: its lease passed to another worker`));
    return super.extend(lease, visibilityMs);
  }
}

describe('worker whose lease passes to another delivery while it computes', () => {
  it('stops, records nothing and publishes nothing: the other delivery answers', async () => {
    const queue = new LeaseTakenQueue({ path: join(dir, 'queue.db'), maxDeliveries: 3 });
    const ledger = new SqliteRequestLedger({ path: join(dir, 'ledger.db') });
    const results = new KeptResults();
    const request = testRequest('1.3', { tenant: 'acme', device: 'dev1', algorithm: 'echo@^1', sha256: 'e'.repeat(64), size: 10, timings: { published: 1_000 } });
    await ledger.recordAccepted(acceptedOf(request, 1_000));
    await queue.enqueue(encodeTask({ v: 1, request, algorithm: REF }), { dedupeId: request.id });
    const executor = {
      execute: async (_ref: AlgorithmRef, input: { chunks: AsyncIterable<Uint8Array> }, signal: AbortSignal): Promise<{ output: unknown }> => {
        for await (const _chunk of input.chunks) if (signal.aborted) break;
        throw signal.aborted ? signal.reason : new ArteriaError('INTERNAL', 'the input ended');
      },
    };
    const worker = new Worker({ queue, ledger, results, inputs: slowInputs, executor }, { visibilityMs: 600, leaseWaitMs: 50, maxInputBytes: 1 << 20, maxDeliveries: 3 });
    try {
      worker.start();
      await vi.waitFor(() => expect(queue.extensions).toBeGreaterThanOrEqual(2), { timeout: 10_000, interval: 20 });
      await vi.waitFor(() => expect(worker.busy).toBe(false), { timeout: 10_000, interval: 20 });
      expect(results.published).toEqual([]);
      expect((await ledger.get(request.id))?.state).toBe('accepted');
    } finally {
      await worker.drain();
      await queue.close();
      await ledger.close();
    }
  });

  it('a lease extension that fails for another reason (the queue briefly unreachable) does not call the work off', async () => {
    /** Extensions 2 and 3 fail as a queue outage does; the lease itself stays with this worker. */
    class FlakyExtendQueue extends SqliteWorkQueue {
      extensions = 0;
      override extend(lease: Lease, visibilityMs: number): Promise<void> {
        this.extensions += 1;
        if (this.extensions === 2 || this.extensions === 3) return Promise.reject(new ArteriaError('QUEUE_UNAVAILABLE', 'queue unreachable for a moment'));
        return super.extend(lease, visibilityMs);
      }
    }
    const queue = new FlakyExtendQueue({ path: join(dir, 'queue-flaky.db'), maxDeliveries: 3 });
    const ledger = new SqliteRequestLedger({ path: join(dir, 'ledger-flaky.db') });
    const results = new KeptResults();
    const request = testRequest('1.4', { tenant: 'acme', device: 'dev1', algorithm: 'echo@^1', sha256: 'e'.repeat(64), size: 10, timings: { published: 1_000 } });
    await ledger.recordAccepted(acceptedOf(request, 1_000));
    await queue.enqueue(encodeTask({ v: 1, request, algorithm: REF }), { dedupeId: request.id });
    let computations = 0;
    const executor = {
      // Computes through the failed extensions, then answers.
      execute: async (_ref: AlgorithmRef, _input: unknown, signal: AbortSignal): Promise<{ output: unknown }> => {
        computations += 1;
        await vi.waitFor(() => expect(queue.extensions).toBeGreaterThanOrEqual(4), { timeout: 10_000, interval: 20 });
        if (signal.aborted) throw signal.reason;
        return { output: { answered: true } };
      },
    };
    const worker = new Worker({ queue, ledger, results, inputs: slowInputs, executor }, { visibilityMs: 600, leaseWaitMs: 50, maxInputBytes: 1 << 20, maxDeliveries: 3 });
    try {
      worker.start();
      await vi.waitFor(() => expect(results.published).toHaveLength(1), { timeout: 15_000, interval: 20 });
      expect(results.published[0]).toMatchObject({ requestId: request.id, status: 'ok', output: { answered: true } });
      // One computation, not a retry after the outage called the first off.
      expect(computations).toBe(1);
      expect((await ledger.get(request.id))?.state).toBe('completed');
    } finally {
      await worker.drain();
      await queue.close();
      await ledger.close();
    }
  });
});
