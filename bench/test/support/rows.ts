import { afterAll, beforeAll, expect } from 'vitest';
import { ChaosCluster } from '../../src/chaos/cluster.js';
import type { ChaosRow } from '../../src/chaos/row.js';

/** A fault row passes: nothing lost, repeated, computed twice, unexpected, or unlike the ledger. */
export function expectClean(row: ChaosRow): void {
  expect({ lost: row.lost, deliveredMoreThanOnce: row.deliveredMoreThanOnce, computedMoreThanOnce: row.computedMoreThanOnce, ledgerMismatch: row.ledgerMismatch, unexpected: row.unexpected }).toEqual({
    lost: 0,
    deliveredMoreThanOnce: 0,
    computedMoreThanOnce: 0,
    ledgerMismatch: 0,
    unexpected: 0,
  });
}

/**
 * Each request's result reached its device exactly once, counted per request id at the
 * device (a copy the broker itself re-sent with DUP set is its at-least-once, apart).
 */
export function expectOnceEach(cluster: ChaosCluster, row: ChaosRow): void {
  const ids = row.ids ?? [];
  expect(ids).toHaveLength(row.sent);
  const notOnce = ids.flatMap((id) => {
    const d = cluster.devices.deliveries.get(id);
    const times = (d?.delivered ?? 0) - (d?.brokerResent ?? 0);
    // A repeat the row traced to a kill between publishing and noting it (see ChaosRow).
    const allowed = row.repeatedAcrossKillIds?.includes(id) === true ? 2 : 1;
    return times === allowed ? [] : [`${id}: ${times}`];
  });
  expect(notOnce).toEqual([]);
}

/** The cluster the CI rows run on (two ingests, two workers, four devices), started once per file. */
export function rowCluster(): () => ChaosCluster {
  let cluster: ChaosCluster | undefined;
  beforeAll(async () => {
    cluster = await ChaosCluster.start({ ingests: 2, workers: 2, devices: 4, resendMs: 5_000 });
  }, 180_000);
  afterAll(() => cluster?.close());
  return () => {
    if (cluster === undefined) throw new Error('the row cluster did not start');
    return cluster;
  };
}
