// The embedded worker pool, the local scale target, runs the ScaleTarget conformance suite
// over a real SQLite queue and ledger (no task arrives, so no algorithm runs).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { scaleTargetConformance } from '@arteria/testing';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { WorkerPool, WorkerPoolTarget } from '@arteria/worker';
import { ArteriaError } from '@arteria/protocol';

scaleTargetConformance('local worker pool', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-pool-'));
  const queue = new SqliteWorkQueue({ path: path.join(dir, 'queue.db'), maxDeliveries: 3 });
  const ledger = new SqliteRequestLedger({ path: path.join(dir, 'ledger.db') });
  const refuse = (): Promise<never> => Promise.reject(new ArteriaError('INTERNAL', 'no task reaches this pool'));
  const pool = new WorkerPool(
    { queue, ledger, inputs: { fetch: refuse, stream: () => ({ [Symbol.asyncIterator]: () => ({ next: refuse }) }) }, executor: { execute: refuse }, results: { publish: refuse, close: () => Promise.resolve() } },
    { visibilityMs: 30_000, leaseWaitMs: 50, maxInputBytes: 1 << 20, maxDeliveries: 3 },
  );
  return {
    target: new WorkerPoolTarget(pool),
    close: async () => {
      await pool.close();
      await queue.close();
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
