import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsRequestLedger } from '@arteria/platform';
import { ChaosCluster } from '../src/chaos/cluster.js';
import { FAULTS } from '../src/chaos/faults.js';
import { runFault } from '../src/chaos/row.js';

/**
 * An ingest process killed mid-load, and the queue and ledger server killed mid-load:
 * every request answered once at the device's plain subscriber, none computed twice.
 * (The 30 s and 60 s ingest absences, network cuts and bursts run in `npm run chaos`.)
 */
describe('cluster fault rows: ingest and queue restarts', () => {
  let cluster: ChaosCluster;
  beforeAll(async () => {
    cluster = await ChaosCluster.start({ ingests: 2, workers: 2, devices: 4, resendMs: 5_000 });
  }, 180_000);
  afterAll(() => cluster?.close());

  it.each([['ingest SIGKILL, back after 10 s', FAULTS.ingestKill10] as const, ['nats-server SIGKILL', FAULTS.natsKill] as const])('%s: nothing lost, nothing delivered or computed twice', async (_name, fault) => {
    const row = await runFault(cluster, fault);
    expect({ sent: row.sent, lost: row.lost, deliveredMoreThanOnce: row.deliveredMoreThanOnce, computedMoreThanOnce: row.computedMoreThanOnce, unexpected: row.unexpected }).toEqual({
      sent: fault.requests,
      lost: 0,
      deliveredMoreThanOnce: 0,
      computedMoreThanOnce: 0,
      unexpected: 0,
    });
    // What each device received is what the ledger recorded (after the queue and ledger
    // server restarted in the middle of it).
    const ledger = await NatsRequestLedger.open({ servers: [cluster.nats.url] });
    try {
      for (const id of row.ids ?? []) {
        const entry = await ledger.get(id);
        expect(entry?.state).toBe('completed');
        expect(entry?.result).toEqual(cluster.devices.deliveries.get(id)?.first);
      }
    } finally {
      await ledger.close();
    }
  }, 150_000);
});
