import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Autoscaler, KedaExternalScaler, KubernetesDeploymentTarget, ledgerSignalSource, type PlatformSample } from '@arteria/autoscaler';
import { DeviceDirectory, type ScaleTarget } from '@arteria/ports';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { tempDir } from './support/platform.js';
import { call, kedaClient, type ScalerClient } from './support/keda-client.js';
import { parseDeviceTopic } from '@arteria/protocol';
import { FixedPolicy, type ScalingSignals } from '@arteria/scaling';

const ref = { name: 'arteria-workers', namespace: 'imaging', scalerMetadata: { tenant: 'acme' } };

/** Opens StreamIsActive for `scaledObjectRef`: what it has said so far, and a promise of its first two answers. */
function watchActive(client: ScalerClient, scaledObjectRef: object): { stream: ReturnType<ScalerClient['StreamIsActive']>; seen: boolean[]; two: Promise<void> } {
  const stream = client.StreamIsActive(scaledObjectRef);
  const seen: boolean[] = [];
  const two = new Promise<void>((resolve) => {
    stream.on('data', (m: { result: boolean }) => {
      seen.push(m.result);
      if (seen.length === 2) resolve();
    });
  });
  // The test cancels the stream at its end; the cancellation arrives as an error.
  stream.on('error', () => undefined);
  return { stream, seen, two };
}

describe('KEDA external scaler (gRPC over the wire)', () => {
  it('serves the computed worker count through GetMetricSpec, GetMetrics, IsActive and StreamIsActive', async () => {
    const scaler = await KedaExternalScaler.start({ port: 0 });
    const client = kedaClient(scaler.address);
    try {
      await scaler.setReplicas(7);
      const spec = await call(client.GetMetricSpec, client, ref);
      expect(spec.metricSpecs).toEqual([{ metricName: 'arteria-workers', targetSize: 1, targetSizeFloat: 1 }]);
      const metrics = await call(client.GetMetrics, client, { scaledObjectRef: ref, metricName: 'arteria-workers' });
      expect(metrics.metricValues).toEqual([{ metricName: 'arteria-workers', metricValue: 7, metricValueFloat: 7 }]);
      expect((await call(client.IsActive, client, ref)).result).toBe(true);
      await expect(call(client.GetMetrics, client, { scaledObjectRef: ref, metricName: 'other' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

      // The stream opens with the current state, then pushes each change.
      const { stream, seen, two } = watchActive(client, ref);
      await new Promise((r) => setTimeout(r, 50));
      await scaler.setReplicas(0);
      await two;
      expect(seen).toEqual([true, false]);
      expect((await call(client.IsActive, client, ref)).result).toBe(false);
      stream.cancel();
    } finally {
      client.close();
      await scaler.close();
      await scaler.close(); // idempotent
    }
  });
});

describe('KEDA external scaler: one count per worker pool', () => {
  const cpu = { name: 'arteria-worker-cpu', namespace: 'arteria', scalerMetadata: { pool: 'cpu' } };
  const gpu = { name: 'arteria-worker-gpu', namespace: 'arteria', scalerMetadata: { pool: 'gpu' } };
  const plain = { name: 'arteria-workers', namespace: 'arteria', scalerMetadata: {} };
  const value = async (client: ScalerClient, scaledObjectRef: object): Promise<number | undefined> =>
    (await call(client.GetMetrics, client, { scaledObjectRef, metricName: 'arteria-workers' })).metricValues[0]?.metricValue;

  it('answers each ScaledObject with its own pool: the computed count for cpu, the gpu floor of 0 (inactive) for gpu', async () => {
    const scaler = await KedaExternalScaler.start({ port: 0 });
    const client = kedaClient(scaler.address);
    try {
      // What the autoscaler role does: the policy's count on the default pool, the gpu pool at its floor.
      await scaler.setReplicas(5);
      await scaler.setPoolReplicas('gpu', 0);
      expect([await value(client, cpu), await value(client, gpu), await value(client, plain)]).toEqual([5, 0, 5]);
      expect([(await call(client.IsActive, client, cpu)).result, (await call(client.IsActive, client, gpu)).result]).toEqual([true, false]);

      // A stream on the gpu pool hears only the gpu pool's changes.
      const { stream, seen, two } = watchActive(client, gpu);
      const first = new Promise<void>((resolve) => stream.once('data', () => resolve()));
      await first;
      await scaler.setReplicas(0); // cpu goes idle: nothing for the gpu stream
      await scaler.setReplicas(3);
      await scaler.poolTarget('gpu').setReplicas(2);
      await two;
      expect(seen).toEqual([false, true]);
      expect(await scaler.poolTarget('gpu').getReplicas()).toEqual({ desired: 2, ready: undefined });
      expect([await value(client, cpu), await value(client, gpu)]).toEqual([3, 2]);
      stream.cancel();

      // A pool nobody sized rests at zero; a malformed pool name is refused.
      expect(await value(client, { ...gpu, scalerMetadata: { pool: 'tpu' } })).toBe(0);
      await expect(scaler.setPoolReplicas('GPU pool', 1)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    } finally {
      client.close();
      await scaler.close();
    }
  });
});

describe('Kubernetes Deployment scale subresource', () => {
  // No API server can run on this machine (no kube-apiserver binary); this server answers
  // the two scale subresource calls exactly as the API server documents them.
  it('reads and merge-patches /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale', async () => {
    let replicas = 3;
    const requests: { method: string; url: string; contentType: string | undefined; body: string; auth: string | undefined }[] = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body, auth: req.headers.authorization });
        if (req.url?.split('?')[0] !== '/apis/apps/v1/namespaces/imaging/deployments/workers/scale') {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }));
          return;
        }
        if (req.method === 'PATCH') replicas = (JSON.parse(body) as { spec: { replicas: number } }).spec.replicas;
        const scale = { kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { name: 'workers', namespace: 'imaging' }, spec: { replicas }, status: { replicas: Math.min(replicas, 3), selector: 'app=workers' } };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(scale));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'test', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'autoscaler', token: 'test-token' }],
      contexts: [{ name: 'test', cluster: 'test', user: 'autoscaler' }],
      currentContext: 'test',
    });
    try {
      const target = new KubernetesDeploymentTarget({ namespace: 'imaging', deployment: 'workers', kubeConfig });
      expect(await target.getReplicas()).toEqual({ desired: 3, ready: 3 });
      await target.setReplicas(12);
      expect(replicas).toBe(12);
      const patch = requests.find((r) => r.method === 'PATCH');
      expect(patch?.contentType).toBe('application/merge-patch+json');
      expect(JSON.parse(patch?.body ?? '{}')).toEqual({ spec: { replicas: 12 } });
      expect(patch?.auth).toBe('Bearer test-token');
      expect(await target.getReplicas()).toEqual({ desired: 12, ready: 3 });

      const missing = new KubernetesDeploymentTarget({ namespace: 'imaging', deployment: 'nope', kubeConfig });
      await expect(missing.getReplicas()).rejects.toMatchObject({ code: 'SCALE_TARGET_UNAVAILABLE' });
    } finally {
      server.close();
    }
  });
});

describe('autoscaler controller', () => {
  it('turns cumulative platform counters into per-tick signals and applies the policy within bounds', async () => {
    let desired = 2;
    const target: ScaleTarget = {
      kind: 'memory',
      getReplicas: () => Promise.resolve({ desired, ready: desired }),
      setReplicas: (n) => {
        desired = n;
        return Promise.resolve();
      },
    };
    const samples: PlatformSample[] = [
      { accepted: 10, serviced: 8, serviceMsSum: 800, serviceMsSumSquares: undefined, queue: { ready: 0, inFlight: 2, oldestAgeMs: 50 }, devicesInProcedure: 3 },
      { accepted: 30, serviced: 20, serviceMsSum: 2000, serviceMsSumSquares: undefined, queue: { ready: 5, inFlight: 2, oldestAgeMs: 900 }, devicesInProcedure: 4 },
    ];
    const seen: ScalingSignals[] = [];
    const policy = { name: 'spy', decide: (s: ScalingSignals) => (seen.push(s), 100) };
    let now = 1_000;
    const autoscaler = new Autoscaler(
      { policy, target, source: { sample: () => Promise.resolve(samples.shift() ?? { accepted: 30, serviced: 20, serviceMsSum: 2000, serviceMsSumSquares: undefined, queue: { ready: 0, inFlight: 0, oldestAgeMs: 0 }, devicesInProcedure: 4 }) }, now: () => now },
      { intervalMs: 1000, minWorkers: 1, maxWorkers: 10, assumedServiceCv: 1 },
    );
    const first = await autoscaler.tick();
    // Capped at maxWorkers.
    expect(first).toMatchObject({ previous: 2, target: 10 });
    now = 2_000;
    const decision = await autoscaler.tick();
    expect(seen[1]).toMatchObject({ nowMs: 2_000, arrivals: 20, completions: 12, serviceMsSum: 1200, queued: 5, oldestWaitMs: 900, busy: 2, devicesInProcedure: 4 });
    // cv 1 assumed: sum of squares = n mean^2 (1 + 1) = 12 * 100^2 * 2.
    expect(seen[1]?.serviceMsSumSquares).toBeCloseTo(240_000, 6);
    expect(decision).toMatchObject({ previous: 10, target: 10 });
    expect(desired).toBe(10);

    // A fixed policy below the floor is lifted to minWorkers.
    const floor = new Autoscaler({ policy: new FixedPolicy('zero', 0), target, source: { sample: () => Promise.resolve(samples[0] ?? { accepted: 0, serviced: 0, serviceMsSum: 0, serviceMsSumSquares: undefined, queue: { ready: 0, inFlight: 0, oldestAgeMs: 0 }, devicesInProcedure: undefined }) } }, { intervalMs: 1000, minWorkers: 1, maxWorkers: 10, assumedServiceCv: 1 });
    await floor.tick();
    expect(desired).toBe(1);
    await autoscaler.close();
    await floor.close();
  });

  it('reports a failing target and keeps ticking', async () => {
    const errors: Error[] = [];
    let calls = 0;
    const target: ScaleTarget = {
      kind: 'broken',
      getReplicas: () => {
        calls += 1;
        return Promise.reject(new Error('api server down'));
      },
      setReplicas: () => Promise.resolve(),
    };
    const source = { sample: () => Promise.resolve({ accepted: 0, serviced: 0, serviceMsSum: 0, serviceMsSumSquares: undefined, queue: { ready: 0, inFlight: 0, oldestAgeMs: 0 }, devicesInProcedure: undefined }) };
    const autoscaler = new Autoscaler({ policy: new FixedPolicy('one', 1), target, source, onError: (e) => errors.push(e) }, { intervalMs: 20, minWorkers: 0, maxWorkers: 4, assumedServiceCv: 1 });
    await autoscaler.start();
    while (calls < 3) await new Promise((r) => setTimeout(r, 10));
    await autoscaler.close();
    expect(autoscaler.state).toBe('closed');
    await expect(autoscaler.start()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    expect(errors[0]).toMatchObject({ code: 'SCALE_TARGET_UNAVAILABLE' });
  });
});

describe('ledger signal source (for an autoscaler apart from the workers)', () => {
  it('measures new completions and their service times from the ledger, and queue depth from the queue', async () => {
    const tmp = await tempDir('ledger-signals');
    const queue = new SqliteWorkQueue({ path: `${tmp.dir}/q.db`, maxDeliveries: 3 });
    const ledger = new SqliteRequestLedger({ path: `${tmp.dir}/q.db` });
    const devices = new DeviceDirectory();
    try {
      const result = (id: string, leased: number, serviceMs: number) => ({ v: 1 as const, requestId: id, tenant: 'acme', device: 'cath-1', status: 'ok' as const, timings: { leased, resultPublished: leased + serviceMs } });
      await ledger.recordResult(result('old-1', 1_700_000_000_000, 9_999));
      const source = ledgerSignalSource({ queue, ledger, devices });
      const before = await source.sample();
      expect(before.serviced).toBe(0); // history is not this tick's work
      expect(before.devicesInProcedure).toBeUndefined();

      await ledger.recordResult(result('new-1', 1_700_000_001_000, 200));
      await ledger.recordResult(result('new-2', 1_700_000_002_000, 400));
      await queue.enqueue(Buffer.from('task'), { dedupeId: 'waiting-1' });
      devices.record(parseDeviceTopic('arteria/v1/acme/cath-1/status'), Buffer.from(JSON.stringify({ v: 1, state: 'online', at: Date.now(), inProcedure: true })));
      const after = await source.sample();
      expect(after).toMatchObject({ serviced: 2, serviceMsSum: 600, serviceMsSumSquares: 200 * 200 + 400 * 400, devicesInProcedure: 1 });
      expect(after.queue.ready).toBe(1);
      // Nothing new: the cumulative counters stay.
      expect((await source.sample()).serviced).toBe(2);
    } finally {
      await ledger.close();
      await queue.close();
      await tmp.remove();
    }
  });
});
