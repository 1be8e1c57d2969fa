import { describe, expect, it } from 'vitest';
import { FAULTS } from '../src/chaos/faults.js';
import { until } from '../src/chaos/net.js';
import { runFault } from '../src/chaos/row.js';
import { expectClean, rowCluster } from './support/rows.js';

/**
 * The broker restarts under load (Mosquitto with persistence, two ingest processes, two
 * workers, NATS queue and ledger): every request is answered once, computed once, and
 * both ingest processes admit again without being restarted.
 */
describe('cluster fault rows: broker restart', () => {
  const get = rowCluster();

  it.each([['SIGTERM', FAULTS.brokerSigterm] as const, ['SIGKILL', FAULTS.brokerSigkill] as const])('broker %s: nothing lost, nothing repeated, both ingests admit again', async (_signal, fault) => {
    const cluster = get();
    const row = await runFault(cluster, fault);
    expectClean(row);
    // Both ingest processes are ready again and each takes its share of new requests.
    await until(async () => ((await cluster.ingestsReady()) ? true : undefined), 'both ingests ready', 20_000);
    const before = await Promise.all(cluster.ingests.map((p) => p.status<{ handled: number }>()));
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => cluster.devices.send(`dev${(i % 4) + 1}`)));
    await until(() => (ids.every((id) => cluster.devices.deliveries.get(id)?.firstResultAt !== undefined) ? true : undefined), 'the new requests answered', 20_000);
    const after = await Promise.all(cluster.ingests.map((p) => p.status<{ handled: number }>()));
    expect(after.map((s, i) => s.handled > (before[i]?.handled ?? 0))).toEqual([true, true]);
    // The operator sees the reconnect and the subscription made again.
    const log = cluster.ingests.map((p) => p.output.join('')).join('');
    expect(log).toMatch(/reconnected after \d+ ms away, session present: (yes|no); subscribing/);
    expect(log).toContain('subscribed to $share/arteria-ingest/arteria/v1/+/+/requests');
  }, 120_000);
});
