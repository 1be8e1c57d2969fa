import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChaosCluster } from '../src/chaos/cluster.js';
import { FAULTS } from '../src/chaos/faults.js';
import { runFault } from '../src/chaos/row.js';

/**
 * nats-server (queue and ledger) is SIGKILLed under load and restarted: every request is
 * answered once, computed once, and the result each device got carries the digest of the
 * result the ledger holds.
 */
describe('cluster fault rows: queue restart', () => {
  let cluster: ChaosCluster;
  beforeAll(async () => {
    cluster = await ChaosCluster.start({ ingests: 2, workers: 2, devices: 4, resendMs: 5_000 });
  }, 180_000);
  afterAll(() => cluster?.close());

  it('nats-server SIGKILL: nothing lost, nothing repeated, the ledger describes what each device received', async () => {
    const row = await runFault(cluster, FAULTS.natsKill);
    expect({ lost: row.lost, deliveredMoreThanOnce: row.deliveredMoreThanOnce, computedMoreThanOnce: row.computedMoreThanOnce, ledgerMismatch: row.ledgerMismatch, unexpected: row.unexpected }).toEqual({
      lost: 0,
      deliveredMoreThanOnce: 0,
      computedMoreThanOnce: 0,
      ledgerMismatch: 0,
      unexpected: 0,
    });
    expect(row.sent).toBe(40);
  }, 150_000);
});
