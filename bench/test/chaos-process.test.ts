import { describe, expect, it } from 'vitest';
import { FAULTS } from '../src/chaos/faults.js';
import { runFault } from '../src/chaos/row.js';
import { expectClean, expectOnceEach, rowCluster } from './support/rows.js';

/**
 * Process kills and a network cut under load, on one cluster (Mosquitto with persistence,
 * two ingest processes, two workers, NATS queue and ledger): every request is answered,
 * each result reaches its device once (counted per request id at the device), and no run
 * is computed twice.
 */
describe('cluster fault rows: processes and network', () => {
  const cluster = rowCluster();

  it('worker SIGKILL mid-task: the killed task goes to another worker, answered once', async () => {
    const row = await runFault(cluster(), FAULTS.workerKill);
    expectClean(row);
    // At most the tasks the killed worker held (concurrency 2) can have been between publish and note.
    expect(row.repeatedAcrossKill).toBeLessThanOrEqual(2);
    expectOnceEach(cluster(), row);
    report(row);
  }, 120_000);

  it('ingest SIGKILL, back after 10 s: the other ingest admits meanwhile, answered once', async () => {
    const row = await runFault(cluster(), FAULTS.ingestKill10);
    expectClean(row);
    expectOnceEach(cluster(), row);
    report(row);
  }, 120_000);

  it('network between devices and broker cut 10 s: requests and results wait, answered once', async () => {
    const row = await runFault(cluster(), FAULTS.networkCut10);
    expectClean(row);
    expectOnceEach(cluster(), row);
    // The cut held requests back: recovery was measured over something.
    expect(row.pendingAtHeal).toBeGreaterThan(0);
    report(row);
  }, 120_000);

  it('broker SIGKILL while the devices are offline: results produced meanwhile are delivered once when they return', async () => {
    const row = await runFault(cluster(), FAULTS.brokerRestartDevicesOffline);
    expectClean(row);
    expectOnceEach(cluster(), row);
    expect(row.pendingAtHeal).toBeGreaterThan(0);
    report(row);
  }, 120_000);
});

/** The row's figures, for docs/reliability.md. */
function report(row: { fault: string }): void {
  const { ids: _ids, repeatedAcrossKillIds: _repeated, ...figures } = row as { ids?: unknown; repeatedAcrossKillIds?: unknown; fault: string };
  console.log(`chaos row ${JSON.stringify(figures)}`);
}
