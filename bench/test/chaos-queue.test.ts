import { describe, expect, it } from 'vitest';
import { FAULTS } from '../src/chaos/faults.js';
import { runFault } from '../src/chaos/row.js';
import { expectClean, rowCluster } from './support/rows.js';

/**
 * nats-server (queue and ledger) is SIGKILLed under load and restarted: every request is
 * answered once, computed once, and the result each device got carries the digest of the
 * result the ledger holds.
 */
describe('cluster fault rows: queue restart', () => {
  const cluster = rowCluster();

  it('nats-server SIGKILL: nothing lost, nothing repeated, the ledger describes what each device received', async () => {
    const row = await runFault(cluster(), FAULTS.natsKill);
    expectClean(row);
    expect(row.sent).toBe(40);
  }, 150_000);
});
