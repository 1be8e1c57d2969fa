// The embedded worker pool, the local scale target, runs the ScaleTarget conformance suite
// over a real SQLite queue and ledger (no task arrives, so no algorithm runs).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { scaleTargetConformance } from '@arteria/testing';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { describe, expect, it } from 'vitest';
import { Worker, WorkerPool, WorkerPoolTarget, type WorkerDeps, type WorkerSettings } from '@arteria/worker';
import { ArteriaError } from '@arteria/protocol';

const SETTINGS: WorkerSettings = { visibilityMs: 30_000, leaseWaitMs: 50, maxInputBytes: 1 << 20, maxDeliveries: 3 };

/** Worker dependencies over a real SQLite queue and ledger that no task reaches. */
async function idleDeps(): Promise<{ deps: WorkerDeps; close: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-pool-'));
  const queue = new SqliteWorkQueue({ path: path.join(dir, 'queue.db'), maxDeliveries: 3 });
  const ledger = new SqliteRequestLedger({ path: path.join(dir, 'ledger.db') });
  const refuse = (): Promise<never> => Promise.reject(new ArteriaError('INTERNAL', 'no task reaches this pool'));
  return {
    deps: { queue, ledger, inputs: { fetch: refuse, stream: () => ({ [Symbol.asyncIterator]: () => ({ next: refuse }) }) }, executor: { execute: refuse }, results: { publish: refuse, close: () => Promise.resolve() } },
    close: async () => {
      await queue.close();
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

scaleTargetConformance('local worker pool', async () => {
  const { deps, close } = await idleDeps();
  const pool = new WorkerPool(deps, SETTINGS);
  return {
    target: new WorkerPoolTarget(pool),
    close: async () => {
      await pool.close();
      await close();
    },
  };
});

describe('worker and worker pool lifecycle', () => {
  it('a worker starts once, drains then closes once, and refuses a second start with ILLEGAL_STATE', async () => {
    const { deps, close } = await idleDeps();
    try {
      const worker = new Worker(deps, SETTINGS);
      expect(worker.state).toBe('new');
      worker.start();
      expect(worker.state).toBe('running');
      expect(() => worker.start()).toThrow(expect.objectContaining({ code: 'ILLEGAL_STATE' }));
      await Promise.all([worker.drain(), worker.drain(), worker.close()]);
      expect(worker.state).toBe('closed');
      {
        await using scoped = new Worker(deps, SETTINGS);
        scoped.start();
      }
    } finally {
      await close();
    }
  });

  it('a pool drains its workers, then refuses resize (ILLEGAL_STATE, a rejection through its scale target); await using closes it', async () => {
    const { deps, close } = await idleDeps();
    try {
      const pool = new WorkerPool(deps, SETTINGS);
      pool.resize(2);
      expect(pool.size).toBe(2);
      const draining = pool.drain();
      expect(pool.state).toBe('draining');
      await Promise.all([draining, pool.close()]);
      expect(pool.state).toBe('closed');
      expect(pool.size).toBe(0);
      expect(() => pool.resize(1)).toThrow(expect.objectContaining({ code: 'ILLEGAL_STATE' }));
      await expect(new WorkerPoolTarget(pool).setReplicas(1)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      let scopedPool: WorkerPool | undefined;
      {
        await using scoped = new WorkerPool(deps, SETTINGS);
        scoped.resize(1);
        scopedPool = scoped;
      }
      expect(scopedPool.state).toBe('closed');
    } finally {
      await close();
    }
  });
});
