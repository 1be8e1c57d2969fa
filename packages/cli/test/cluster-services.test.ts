import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopic, encodePayload, epochNow, requestId, type RequestV1 } from '@arteria/protocol';
import { LEDGER_KEY_FILE, loadOrCreateLedgerSigner, type DeviceRecord } from '@arteria/ports';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { type AutoscalerRoleStatus, type DashboardRoleStatus } from '@arteria/platform';
import { type HistorySnapshot } from '@arteria/telemetry';
import { type RequestView, type ResultRow } from '@arteria/operations';
import { CLI, ClusterDevice, RoleProcess, freePort, opsAuth, until, waitForPort, writeKedaClusterConfig } from './support/cluster.js';

const run = promisify(execFile);
const TENANT_SECRET = 'services-tenant-secret-0123456789';
const PLATFORM_SECRET = 'services-platform-secret-0123456789';
const PROTO = fileURLToPath(new URL('../../autoscaler/src/externalscaler.proto', import.meta.url));

type Unary<Req, Res> = (request: Req, callback: (err: grpc.ServiceError | null, response?: Res) => void) => grpc.ClientUnaryCall;
interface ScalerClient extends grpc.Client {
  IsActive: Unary<object, { result: boolean }>;
  GetMetricSpec: Unary<object, { metricSpecs: { metricName: string; targetSize: number }[] }>;
  GetMetrics: Unary<object, { metricValues: { metricName: string; metricValue: number }[] }>;
}
const call = <Req, Res>(fn: Unary<Req, Res>, client: grpc.Client, request: Req): Promise<Res> =>
  new Promise((resolve, reject) => {
    fn.call(client, request, (err, response) => (err ? reject(err) : resolve(response as Res)));
  });
const ref = { name: 'arteria-worker-cpu', namespace: 'arteria', scalerMetadata: { pool: 'cpu' } };

/**
 * `arteria autoscaler` and `arteria dashboard` as processes started with the real CLI,
 * on Mosquitto (device status) and the shared SQLite queue and ledger. Requests are
 * queued with no worker running, so the computed worker count must rise, and KEDA's
 * gRPC client reads it over the wire.
 */
describe('autoscaler and dashboard roles as processes', () => {
  let dir: string;
  let mosquitto: ChildProcess;
  let device: ClusterDevice;
  let autoscaler: RoleProcess;
  let dashboard: RoleProcess;
  let client: ScalerClient;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-services-'));
    const secretsFile = path.join(dir, 'secrets.json');
    await writeFile(secretsFile, JSON.stringify({ platformSecret: PLATFORM_SECRET, tenants: { acme: TENANT_SECRET } }), { mode: 0o600 });
    const mqttPort = await freePort();
    const brokerDir = path.join(dir, 'broker');
    await run(process.execPath, [CLI, 'broker', 'mosquitto', '--plaintext', '--out', brokerDir, '--port', String(mqttPort), '--host', '127.0.0.1', '--user', process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root'), '--secrets-file', secretsFile, '--device', 'acme/dev1']);
    mosquitto = spawn('/usr/sbin/mosquitto', ['-c', path.join(brokerDir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForPort(mqttPort);
    const grpcPort = await freePort();
    const configFile = await writeKedaClusterConfig(dir, mqttPort, `grpcPort: ${grpcPort}, minWorkers: 1, maxWorkers: 12, intervalMs: 200, workerStartupMs: 0, serviceMs: 1000, rateSmoothingMs: 1000`, secretsFile);
    [autoscaler, dashboard] = await Promise.all([RoleProcess.start(['autoscaler', '--config', configFile], 'autoscaler'), RoleProcess.start(['dashboard', '--config', configFile], 'dashboard')]);
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true }));
    const Ctor = (pkg.externalscaler as grpc.GrpcObject).ExternalScaler as grpc.ServiceClientConstructor;
    client = new Ctor(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()) as unknown as ScalerClient;
    device = await ClusterDevice.connect(`mqtt://127.0.0.1:${mqttPort}`, TENANT_SECRET, 'acme', 'dev1');
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await device?.close();
    await Promise.all([autoscaler, dashboard].map((p) => p?.stop()));
    mosquitto?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes a worker count to a KEDA gRPC client that rises when requests queue up', async () => {
    const spec = await call(client.GetMetricSpec, client, ref);
    expect(spec.metricSpecs).toEqual([expect.objectContaining({ metricName: 'arteria-workers', targetSize: 1 })]);
    const metric = async (): Promise<number> => (await call(client.GetMetrics, client, { scaledObjectRef: ref, metricName: 'arteria-workers' })).metricValues[0]?.metricValue ?? -1;
    const idle = await metric();
    expect(idle).toBe(1); // the floor: nothing arrives
    expect((await call(client.IsActive, client, ref)).result).toBe(true);

    // The device's status reaches the autoscaler (its leading indicator) and the dashboard.
    await device.client.publishAsync(deviceTopic(device, 'status'), encodePayload({ v: 1, state: 'online', at: epochNow(), inProcedure: true }), { qos: 1 });
    // The configuration its gateway runs, as a gateway reports it (retained).
    await device.client.publishAsync(deviceTopic(device, 'config/reported'), encodePayload({ v: 1, version: 7, applied: true, activeVersion: 7 }), { qos: 1, retain: true });
    await until(async () => ((await autoscaler.status<AutoscalerRoleStatus>()).devices.inProcedure === 1 ? true : undefined), 'the autoscaler to see the device in a procedure');

    // A burst as ingest would record it, with no worker to take it.
    const queue = new SqliteWorkQueue({ path: path.join(dir, 'platform.db'), maxDeliveries: 5, synchronous: 'FULL' });
    // Signed with the deployment's key (the roles made it at start), as ingest records.
    const ledger = new SqliteRequestLedger({ path: path.join(dir, 'platform.db'), signer: await loadOrCreateLedgerSigner(path.join(dir, LEDGER_KEY_FILE)) });
    try {
      const now = epochNow();
      for (let i = 0; i < 40; i++) {
        const sha256 = i.toString(16).padStart(64, '0');
        const instanceUid = `1.2.826.0.1.3680043.10.9.${i}`;
        const request: RequestV1 = {
          v: 1,
          id: requestId({ tenant: 'acme', device: 'dev1', instanceUid, sha256, algorithm: 'nap@^1', inputUris: [`s3://arteria-runs/acme/dev1/${instanceUid}/${sha256}.dcm`] }),
          tenant: 'acme',
          device: 'dev1',
          algorithm: 'nap@^1',
          instanceUid,
          inputs: [{ uri: `s3://arteria-runs/acme/dev1/${instanceUid}/${sha256}.dcm`, size: 1, sha256, contentType: 'application/dicom' }],
          priority: 'clinical',
          timings: { published: now },
        };
        await ledger.recordAccepted({ requestId: request.id, tenant: 'acme', device: 'dev1', algorithm: request.algorithm, acceptedAt: now, request });
        await queue.enqueue(Buffer.from(encodePayload(request)), { dedupeId: request.id });
      }
    } finally {
      await Promise.all([queue.close(), ledger.close()]);
    }
    const grown = await until(async () => {
      const n = await metric();
      return n > idle ? n : undefined;
    }, 'the worker count to rise');
    expect(grown).toBeGreaterThan(1);
    expect(grown).toBeLessThanOrEqual(12);
    const status = await autoscaler.status<AutoscalerRoleStatus>();
    expect(status).toMatchObject({ role: 'autoscaler', state: 'running', target: 'keda', statusConnected: true });
    expect(status.workers).toBeGreaterThan(1);
    expect((await fetch(`${autoscaler.url}/readyz`)).status).toBe(200);

    // The dashboard reads the same stores and topic. It is a process of its own: the device's
    // status reaches it on its own subscription, not necessarily before the autoscaler's.
    const board = await until(async () => {
      const b = await dashboard.status<DashboardRoleStatus>();
      return b.devices.inProcedure === 1 ? b : undefined;
    }, 'the dashboard to see the device in a procedure');
    expect(board.requests).toMatchObject({ accepted: 40, completed: 0 });
    expect(board.queue).toMatchObject({ ready: 40, inFlight: 0 });
    expect(board.devices).toMatchObject({ known: 1, online: 1, inProcedure: 1 });
    const page = await fetch(`${dashboard.url}/`, opsAuth);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/dashboard.js');
    // The configuration report (retained) reaches the dashboard on its own, like the status.
    const devices = await until(async () => {
      const d = (await (await fetch(`${dashboard.url}/api/devices`, opsAuth)).json()) as { devices: DeviceRecord[] };
      return d.devices[0]?.configVersion === undefined ? undefined : d;
    }, "the dashboard to hold the device's reported configuration");
    expect(devices.devices.map((d) => `${d.tenant}/${d.device}`)).toEqual(['acme/dev1']);
    const results = (await (await fetch(`${dashboard.url}/api/results?limit=5`, opsAuth)).json()) as { results: ResultRow[] };
    expect(results.results).toHaveLength(5);
    expect(results.results.every((r) => r.status === 'accepted' && r.algorithm === 'nap@^1')).toBe(true);
    expect(devices.devices[0]?.configVersion).toBe(7);
    // History from the shared queue, and the worker counts from the roster in the shared
    // database: no worker runs here, and the autoscaler's wish has risen.
    const history = await until(async () => {
      const h = (await (await fetch(`${dashboard.url}/api/history`, opsAuth)).json()) as HistorySnapshot;
      return h.points.some((p) => p.queueReady === 40) && (h.points.at(-1)?.workersDesired ?? 0) > 1 ? h : undefined;
    }, 'the history to show the queued burst and the desired workers');
    expect(history.points.at(-1)?.workersActual).toBe(0);
    expect(board.workers).toMatchObject({ processes: 0, size: 0, roster: [] });
    // The request page reads the shared ledger.
    const first = results.results[0]?.requestId ?? '';
    const view = (await (await fetch(`${dashboard.url}/api/requests/${first}`, opsAuth)).json()) as RequestView;
    expect(view).toMatchObject({ requestId: first, state: 'accepted', servedIntact: true, result: null });
    expect(view.provenance.records.map((r) => [r.kind, r.intact])).toEqual([['accepted', true]]);
    // No registry or entitlements here: replay is the command's.
    const replay = await fetch(`${dashboard.url}/api/dead-letters/t-1/replay`, { ...opsAuth, method: 'POST' });
    expect(replay.status).toBe(501);
    expect(await replay.json()).toMatchObject({ error: { code: 'REPLAY_NOT_AVAILABLE' } });
    // Refusals are counted where requests are admitted (ingest's /metrics and /status), not here.
    expect(await (await fetch(`${dashboard.url}/api/refusals`, opsAuth)).json()).toBeNull();
    expect((await fetch(`${dashboard.url}/readyz`)).status).toBe(200);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    autoscaler.signal('SIGTERM');
    dashboard.signal('SIGTERM');
    expect(await Promise.all([autoscaler.exited, dashboard.exited])).toEqual([0, 0]);
  });
});
