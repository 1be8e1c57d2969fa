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
