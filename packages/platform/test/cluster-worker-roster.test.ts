import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedObjectStore } from '@arteria/engine-s3';
import type { HistorySnapshot } from '@arteria/telemetry';
import { freePort, startMosquitto, TestNatsServer, type RunningMosquitto } from '@arteria/testing';
import { EMBEDDED_S3_CREDENTIALS } from '../src/embedded/embedded-platform.js';
import { AutoscalerRole } from '../src/cluster/autoscaler-role.js';
import { DashboardRole } from '../src/cluster/dashboard-role.js';
import { WorkerRole } from '../src/cluster/worker-role.js';
import { parseClusterConfig, type ClusterConfig } from '../src/cluster/cluster-config.js';
import { fixtureAlgorithm, tempDir } from './support/platform.js';

const PLATFORM_SECRET = 'roster-platform-secret-0123456789';
const BUCKET = 'arteria-runs';
const TOKEN = 'roster-operator-token-0123456789';

/**
 * The cluster's worker counts without scraping anyone's /metrics: worker processes beat
 * into the roster on the ledger's NATS JetStream (a key-value bucket), the autoscaler
 * records its desired count there, and the dashboard role (its status and its history
 * chart "workers desired and actual") reads both.
 */
describe('worker counts of a cluster on NATS, seen by the dashboard role', () => {
  let nats: TestNatsServer;
  let broker: RunningMosquitto;
  const store = new EmbeddedObjectStore();
  let removeDir: () => Promise<void>;
  const workers: WorkerRole[] = [];
  let autoscaler: AutoscalerRole;
  let dashboard: DashboardRole;
  const errors: Error[] = [];
  /** The newest point of the dashboard's history, as its chart reads it. */
  const lastPoint = async (): Promise<HistorySnapshot['points'][number] | undefined> => {
    const res = await fetch(`${dashboard.http.url}/api/history`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return ((await res.json()) as HistorySnapshot).points.at(-1);
  };

  beforeAll(async () => {
    const tmp = await tempDir('roster');
    removeDir = () => tmp.remove();
    nats = await TestNatsServer.start();
    broker = await startMosquitto(path.join(tmp.dir, 'broker'), { platformSecret: PLATFORM_SECRET, tenants: new Map(), devices: [] });
    await store.start({ host: '127.0.0.1', port: 0, directory: path.join(tmp.dir, 'objects'), buckets: [BUCKET] });
    const grpcPort = await freePort();
    const config = (instanceId: string): Readonly<ClusterConfig> =>
      parseClusterConfig({
        instanceId,
        dataDir: tmp.dir,
        mqtt: { url: `mqtt://127.0.0.1:${broker.port}` },
        s3: { endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS },
        queue: { kind: 'nats', natsServers: nats.url },
        ledger: { kind: 'nats' },
        http: { port: 0, token: TOKEN },
        worker: { concurrency: 2, leaseWaitMs: 200, threadsPerAlgorithm: 1, drainTimeoutMs: 2_000 },
        algorithms: { bundled: false },
        // Nothing arrives: the autoscaler asks for its floor.
        autoscale: { target: 'keda', grpcPort, minWorkers: 3, maxWorkers: 8, intervalMs: 200 },
      });
    const deps = { platformSecret: PLATFORM_SECRET, algorithmDirs: [fixtureAlgorithm('echo')], onError: (err: Error) => errors.push(err) };
    workers.push(await WorkerRole.start(config('worker-0'), deps), await WorkerRole.start(config('worker-1'), deps));
    autoscaler = await AutoscalerRole.start(config('autoscaler-0'), deps);
    dashboard = await DashboardRole.start(config('dashboard-0'), deps);
  }, 60_000);

  afterAll(async () => {
    await dashboard?.close();
    await autoscaler?.close();
    await Promise.all(workers.map((w) => w.close()));
    await store.close();
    await broker?.stop();
    await nats?.stop();
    await removeDir?.();
  });

  it('shows the running workers and the desired count in the status and the history', async () => {
    await expect.poll(async () => (await dashboard.status()).workers, { timeout: 15_000 }).toMatchObject({ processes: 2, size: 4, desired: 3 });
    const { roster } = (await dashboard.status()).workers;
    expect(roster.map((w) => [w.instanceId, w.pool, w.state, w.concurrency])).toEqual([
      ['worker-0', 'cpu', 'running', 2],
      ['worker-1', 'cpu', 'running', 2],
    ]);
    // The chart's series: processes, the autoscaler's unit.
    await expect.poll(() => lastPoint(), { timeout: 15_000 }).toMatchObject({ workersActual: 2, workersDesired: 3 });
    expect(errors.map((e) => e.message)).toEqual([]);
  });

  it('drops a worker that stops, at once', async () => {
    const [, second] = workers;
    await second?.close();
    await expect.poll(async () => (await dashboard.status()).workers.processes, { timeout: 15_000 }).toBe(1);
    await expect.poll(async () => (await lastPoint())?.workersActual, { timeout: 15_000 }).toBe(1);
  });
});
