import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { encodePayload, type AlgorithmRef } from '@arteria/protocol';
import { Ingest } from '@arteria/ingest';
import { decodeTask } from '@arteria/ports';
import { TestNatsServer, TestSqsServer, testRequest } from '@arteria/testing';
import { parseClusterConfig, type ClusterConfig } from '../src/cluster/cluster-config.js';
import { openSharedStores, workerPools, type SharedStores } from '../src/cluster/stores.js';
import { KeptResults } from './support/kept-results.js';

vi.setConfig({ testTimeout: 60_000 });

const dir = mkdtempSync(join(tmpdir(), 'arteria-gpu-routing-'));
const nats = await TestNatsServer.start();
const sqs = await TestSqsServer.start();
afterAll(async () => {
  await Promise.allSettled([nats.stop(), sqs.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
/** Two installed algorithms as the registry resolves them: one whose manifest asks for a GPU. */
const ALGORITHMS: Record<string, { ref: AlgorithmRef; manifest: { resources: { gpu: boolean } } }> = {
  'vessel-cpu': { ref: { name: 'vessel-cpu', version: '1.0.0', digest: digest('a') }, manifest: { resources: { gpu: false } } },
  'vessel-gpu': { ref: { name: 'vessel-gpu', version: '1.0.0', digest: digest('b') }, manifest: { resources: { gpu: true } } },
};
const algorithms = {
  resolve(spec: string) {
    const found = ALGORITHMS[spec.split('@')[0] ?? ''];
    if (found === undefined) throw new Error(`no ${spec}`);
    return found;
  },
};

let n = 0;
const engines: Record<ClusterConfig['queue']['kind'], () => Record<string, unknown>> = {
  sqlite: () => ({ kind: 'sqlite', path: join(dir, `q${++n}.db`) }),
  nats: () => ({ kind: 'nats', natsServers: nats.url, natsStream: `ROUTE_${++n}` }),
  sqs: () => ({ kind: 'sqs', sqsEndpoint: sqs.clientOptions.endpoint, sqsRegion: sqs.clientOptions.region, sqsAccessKeyId: sqs.clientOptions.accessKeyId, sqsSecretAccessKey: sqs.clientOptions.secretAccessKey, sqsName: `route-${++n}`, path: join(dir, `records-${n}.db`) }),
};

const leaseAll = async (stores: SharedStores): Promise<string[]> => {
  const leases = await stores.queue.lease({ max: 10, visibilityMs: 30_000, waitMs: 1_500 });
  return leases.map((lease) => decodeTask(lease.payload).algorithm.name);
};

describe.each(Object.keys(engines) as ClusterConfig['queue']['kind'][])('GPU routing on the %s queue', (kind) => {
  it("a GPU algorithm's request lands on the gpu pool's queue; a cpu worker never leases it, a gpu worker does", async () => {
    const queue = { ...engines[kind](), gpuPool: true, maxDeliveries: 3 };
    const base = { dataDir: join(dir, `data-${kind}`), queue };
    const ingestStores = await openSharedStores(parseClusterConfig(base));
    const cpuConfig = parseClusterConfig({ ...base, worker: { pool: 'cpu' } });
    const gpuConfig = parseClusterConfig({ ...base, worker: { pool: 'gpu' } });
    const cpuWorker = await openSharedStores(cpuConfig, {}, workerPools(cpuConfig));
    const gpuWorker = await openSharedStores(gpuConfig, {}, workerPools(gpuConfig));
    try {
      expect([...ingestStores.queues.keys()]).toEqual(['cpu', 'gpu']);
      expect([...cpuWorker.queues.keys()]).toEqual(['cpu']);
      expect([...gpuWorker.queues.keys()]).toEqual(['gpu']);
      const gpuQueue = ingestStores.queues.get('gpu');
      const ingest = new Ingest({ queue: ingestStores.queue, ...(gpuQueue ? { gpuQueue } : {}), ledger: ingestStores.ledger, results: new KeptResults(), bucket: 'runs', algorithms });
      const topic = { tenant: 'h1', device: 'cl-1', kind: 'requests' as const };
      for (const [uid, algorithm] of [['1.1', 'vessel-gpu@1'], ['1.2', 'vessel-cpu@1'], ['1.3', 'vessel-gpu@1']] as const) {
        expect(await ingest.handle(topic, encodePayload(testRequest(uid, { algorithm })))).toMatchObject({ status: 'accepted' });
      }
      expect(await gpuQueue?.stats()).toMatchObject({ ready: 2 });
      expect(await ingestStores.queue.stats()).toMatchObject({ ready: 1 });
      // Queue depth as the dashboard and the autoscaler role report it counts every pool.
      expect(await ingestStores.queueStats()).toMatchObject({ ready: 3 });

      // The cpu worker's queue holds only the cpu algorithm's task, and stays empty after it.
      expect(await leaseAll(cpuWorker)).toEqual(['vessel-cpu']);
      expect(await leaseAll(cpuWorker)).toEqual([]);
      // The gpu worker gets both GPU tasks.
      const gpuTasks = [...(await leaseAll(gpuWorker)), ...(await leaseAll(gpuWorker))];
      expect(gpuTasks).toEqual(['vessel-gpu', 'vessel-gpu']);

      // A resend of a GPU request whose task is still leased is a duplicate: ingest looks in every pool.
      expect(await ingest.handle(topic, encodePayload(testRequest('1.1', { algorithm: 'vessel-gpu@1' })))).toMatchObject({ status: 'duplicate' });
    } finally {
      await Promise.allSettled([ingestStores.close(), cpuWorker.close(), gpuWorker.close()]);
    }
  });
});

describe('GPU routing off', () => {
  it('without queue.gpuPool every task goes to the one queue and no gpu queue is opened', async () => {
    const config = parseClusterConfig({ dataDir: join(dir, 'off'), queue: { kind: 'sqlite', path: join(dir, 'off.db') } });
    const stores = await openSharedStores(config);
    try {
      expect([...stores.queues.keys()]).toEqual(['cpu']);
      const ingest = new Ingest({ queue: stores.queue, ledger: stores.ledger, results: new KeptResults(), bucket: 'runs', algorithms });
      expect(await ingest.handle({ tenant: 'h1', device: 'cl-1', kind: 'requests' }, encodePayload(testRequest('2.1', { algorithm: 'vessel-gpu@1' })))).toMatchObject({ status: 'accepted' });
      expect(await leaseAll(stores)).toEqual(['vessel-gpu']);
    } finally {
      await stores.close();
    }
  });
});
