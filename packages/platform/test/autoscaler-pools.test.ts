import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { AutoscalerRole } from '../src/cluster/autoscaler-role.js';
import { parseClusterConfig } from '../src/cluster/cluster-config.js';
import { openSharedStores } from '../src/cluster/stores.js';
import { tempDir } from './support/platform.js';
import { call, kedaClient, type ScalerClient } from './support/keda-client.js';

vi.setConfig({ testTimeout: 60_000 });

const cpu = { name: 'arteria-worker-cpu', namespace: 'arteria', scalerMetadata: { pool: 'cpu' } };
const gpu = { name: 'arteria-worker-gpu', namespace: 'arteria', scalerMetadata: { pool: 'gpu' } };
const count = async (client: ScalerClient, scaledObjectRef: object): Promise<number | undefined> =>
  (await call(client.GetMetrics, client, { scaledObjectRef, metricName: 'arteria-workers' })).metricValues[0]?.metricValue;
const active = async (client: ScalerClient, scaledObjectRef: object): Promise<boolean> => (await call(client.IsActive, client, scaledObjectRef)).result;

/**
 * `arteria autoscaler` with a gpu pool: KEDA's two ScaledObjects (pool cpu, pool gpu) ask
 * the same external scaler over gRPC and each hears its own pool's count. GPU tasks wake
 * the gpu pool from zero; once its queue is empty it goes back to zero (minWorkers 0).
 */
describe('autoscaler role: a count per worker pool through the KEDA external scaler', () => {
  it('answers pool=cpu and pool=gpu differently; the gpu pool follows its own queue and rests at zero when idle', async () => {
    const temp = await tempDir('arteria-pools-');
    const dir = temp.dir;
    const config = parseClusterConfig({
      dataDir: dir,
      queue: { kind: 'sqlite', path: join(dir, 'platform.db'), gpuPool: true },
      // No broker here: the autoscaler decides from the queues and ledger alone.
      mqtt: { url: 'mqtt://127.0.0.1:1' },
      http: { port: 0 },
      autoscale: { target: 'keda', grpcPort: 0, intervalMs: 50, minWorkers: 2, maxWorkers: 8, gpuMinWorkers: 0, gpuMaxWorkers: 4, scaleInDelayMs: 0 },
    });
    const stores = await openSharedStores(config);
    const role = await AutoscalerRole.start(config, { platformSecret: 's'.repeat(32) });
    const address = role.keda?.address;
    if (address === undefined) throw new Error('the keda scaler is not listening');
    const client = kedaClient(address);
    try {
      // Idle: cpu at its floor (active), gpu at zero (inactive).
      await vi.waitFor(async () => expect([await count(client, cpu), await count(client, gpu)]).toEqual([2, 0]), { timeout: 10_000 });
      expect([await active(client, cpu), await active(client, gpu)]).toEqual([true, false]);

      // Three GPU tasks wait: the gpu pool wakes with one worker each; the cpu pool is not asked for more.
      const gpuQueue = stores.queues.get('gpu');
      if (gpuQueue === undefined) throw new Error('no gpu queue');
      for (const id of ['g1', 'g2', 'g3']) await gpuQueue.enqueue(Buffer.from(id), { dedupeId: id });
      await vi.waitFor(async () => expect(await count(client, gpu)).toBe(3), { timeout: 10_000 });
      expect(await active(client, gpu)).toBe(true);
      expect(await count(client, cpu)).toBe(2);
      expect(role.status()).toMatchObject({ workers: 2, gpuWorkers: 3 });

      // The GPU work is done: the pool scales back to zero.
      const leases = await gpuQueue.lease({ max: 3, visibilityMs: 30_000, waitMs: 0 });
      expect(leases).toHaveLength(3);
      for (const lease of leases) await gpuQueue.ack(lease);
      await vi.waitFor(async () => expect(await count(client, gpu)).toBe(0), { timeout: 10_000 });
      expect([await active(client, cpu), await active(client, gpu)]).toEqual([true, false]);
      expect(role.status()).toMatchObject({ gpuWorkers: 0 });
    } finally {
      client.close();
      await role.close();
      await stores.close();
      await temp.remove();
    }
  });
});
