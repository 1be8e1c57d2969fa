// Cluster workers run segmented runs from the deployment's shared checkpoints: a worker
// process SIGKILLed while it folds a segment is replaced, and the replacement carries on
// from the checkpoint; the device gets one final result and each partial result once.
// Twice: checkpoints in the ledger's SQLite file (workers on one machine), and in NATS
// JetStream key-value with states in the S3-API bucket (workers on several machines). A
// run's segments are read through the S3 API, stored as frames or compressed.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { synthesizeXaRun } from '@arteria/dicom';
import { EmbeddedObjectStore, createS3Client, s3ObjectBucket } from '@arteria/engine-s3';
import { brokerServicePassword, brokerServiceUsername } from '@arteria/engine-mqtt';
import { legacyDeviceToken } from '@arteria/protocol';
import type { RunCheckpointStore } from '@arteria/ports';
import { runAlgorithmOnDicom, type Algorithm } from '@arteria/sdk';
import { TestDevice, TestNatsServer } from '@arteria/testing';
import { EMBEDDED_S3_CREDENTIALS } from '../src/embedded/embedded-platform.js';
import { IngestRole } from '../src/cluster/ingest-role.js';
import { WorkerRole } from '../src/cluster/worker-role.js';
import { openRunCheckpoints, openSharedStores, type SharedStores } from '../src/cluster/stores.js';
import { parseClusterConfig } from '../src/cluster/cluster-config.js';
import { SECRET, fixtureAlgorithm, tempDir } from './support/platform.js';
import { SegmentedRun } from './support/segmented-run.js';

const BUCKET = 'arteria-runs';
const PLATFORM_SECRET = 'takeover-platform-secret-0123456789';
const WORKER_PROCESS = fileURLToPath(new URL('./fixtures/worker-process.mjs', import.meta.url));
const CONTRAST_INJECTION = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));
const ALGORITHMS = [fixtureAlgorithm('tally'), CONTRAST_INJECTION];

/** nats-server's MQTT listener as the broker: the device on its own subjects, the roles' service users. */
function authorization(): string[] {
  const base = 'arteria.v1.acme.cath-lab-1';
  const device = `{ user: "acme/cath-lab-1", password: "${legacyDeviceToken(SECRET, { tenant: 'acme', device: 'cath-lab-1' })}", allowed_connection_types: ["MQTT"], permissions: { publish: { allow: ["${base}.requests", "${base}.status"] }, subscribe: { allow: ["${base}.results", "$MQTT.sub.>"] } } }`;
  const service = (role: 'ingest' | 'worker'): string =>
    `{ user: "${brokerServiceUsername(role)}", password: "${brokerServicePassword(PLATFORM_SECRET, role)}", allowed_connection_types: ["MQTT"], permissions: { publish: { allow: ["arteria.v1.*.*.results"] }, subscribe: { deny: [">"] } } }`;
  return ['authorization {', '  users: [', device, service('ingest'), service('worker'), '    { user: "arteria-platform", password: "unused-in-this-test", allowed_connection_types: ["STANDARD"] }', '  ]', '}', 'no_auth_user: "arteria-platform"'];
}

describe.each(['sqlite', 'nats'] as const)('cluster workers on segmented runs, checkpoints on %s', (engine) => {
  let server: TestNatsServer;
  const store = new EmbeddedObjectStore();
  let s3: S3Client;
  let ingest: IngestRole;
  let device: TestDevice;
  let checkpoints: RunCheckpointStore;
  let shared: SharedStores;
  let child: ChildProcess | undefined;
  let replacement: WorkerRole | undefined;
  let removeDir: () => Promise<void>;
  let config: (instanceId: string) => Record<string, unknown>;
  const errors: Error[] = [];

  beforeAll(async () => {
    const tmp = await tempDir(`takeover-${engine}`);
    removeDir = () => tmp.remove();
    server = await TestNatsServer.start(authorization(), { mqtt: true });
    await store.start({ host: '127.0.0.1', port: 0, directory: path.join(tmp.dir, 'objects'), buckets: [BUCKET] });
    s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    config = (instanceId) => ({
      instanceId,
      dataDir: tmp.dir,
      mqtt: { url: server.mqttUrl },
      ingest: { source: 'nats-stream', natsStream: 'ARTERIA_REQUESTS', natsAckWaitMs: 5_000 },
      s3: { endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS },
      queue: { kind: engine, natsServers: server.natsUrl },
      ledger: { kind: engine },
      http: { port: 0 },
      // A lease of a killed worker passes on after 3 s.
      worker: { concurrency: 1, leaseWaitMs: 200, threadsPerAlgorithm: 1, visibilityMs: 3_000, drainTimeoutMs: 5_000 },
      algorithms: { bundled: false },
    });
    const deps = { platformSecret: PLATFORM_SECRET, algorithmDirs: ALGORITHMS, onError: (err: Error) => errors.push(err) };
    ingest = await IngestRole.start(parseClusterConfig(config('ingest-0')), deps);
    device = await TestDevice.connect(server.mqttUrl, SECRET, 'acme', 'cath-lab-1', { token: legacyDeviceToken(SECRET, { tenant: 'acme', device: 'cath-lab-1' }) });
    // The test reads the checkpoints and the queue as another process of the cluster would.
    checkpoints = await openRunCheckpoints(parseClusterConfig(config('observer')), s3ObjectBucket(s3, BUCKET));
    shared = await openSharedStores(parseClusterConfig(config('observer')));
  }, 60_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    await device?.close();
    await replacement?.close();
    await ingest?.close();
    await checkpoints?.close();
    await shared?.close();
    s3?.destroy();
    await store.close();
    await server?.stop();
    await removeDir?.();
  });

  it('a worker process killed while it folds a segment: another takes over from the checkpoint, one result, each partial once', { timeout: 240_000 }, async () => {
    const frames = 6 * 4;
    const bytes = synthesizeXaRun({ seed: 61, rows: 32, columns: 32, frames, bitsStored: 8 }).bytes;
    const run = new SegmentedRun(device, BUCKET, bytes, { rows: 32, columns: 32, frames, bytesPerSample: 1 }, 'tally@^1', '1.2.826.0.1.3680043.10.13.1', 4);
    await run.upload(s3);
    child = fork(WORKER_PROCESS, [JSON.stringify(config('worker-a')), JSON.stringify(ALGORITHMS), PLATFORM_SECRET], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    await once(child.stdout!, 'data');
    await run.send(run.open);
    for (const segment of run.segments.slice(0, 3)) await run.send(segment);
    await vi.waitFor(async () => expect((await checkpoints.get(run.id))?.next).toBe(3), { timeout: 60_000, interval: 100 });
    await vi.waitFor(() => expect(device.partials.filter((p) => p.requestId === run.id)).toHaveLength(3), { timeout: 30_000, interval: 50 });

    // Segment 3: parked means worker A holds its lease and is inside the 1.5 s fold. Kill it there.
    await run.send(run.segments[3]!);
    await vi.waitFor(async () => expect(await checkpoints.parked(run.id, 3)).toBeDefined(), { timeout: 30_000, interval: 20 });
    child.kill('SIGKILL');
    await once(child, 'exit');
    child = undefined;
    expect((await checkpoints.get(run.id))?.next).toBe(3);

    replacement = await WorkerRole.start(parseClusterConfig(config('worker-b')), { platformSecret: PLATFORM_SECRET, algorithmDirs: ALGORITHMS, onError: (err: Error) => errors.push(err) });
    for (const segment of run.segments.slice(4)) await run.send(segment);
    await run.send(run.end);
    const result = await device.next((r) => r.requestId === run.id);
    const { default: tally } = (await import(path.join(fixtureAlgorithm('tally'), 'lib/index.js'))) as { default: Algorithm };
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.output).toEqual(await runAlgorithmOnDicom(tally, bytes));

    // Settled: the killed worker's lease on segment 3 came back and was answered from the checkpoint, nothing left to run.
    // Left queued: only the run's idle look, due a run idle time after its open (it finds the run answered).
    await vi.waitFor(async () => expect(await shared.queue.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 1, deadLettered: 0 }), { timeout: 60_000, interval: 200 });
    expect(await shared.queue.pending(`${run.id}.expire.0`)).toBe(true);
    // The worker removes the checkpoint before it acknowledges the end step: settled means released.
    expect(await checkpoints.get(run.id)).toBeUndefined();
    expect(device.results.filter((r) => r.requestId === run.id)).toHaveLength(1);
    const partials = device.partials.filter((p) => p.requestId === run.id);
    expect(partials.map((p) => [p.seq, p.event.key])).toEqual(run.segments.map((s, i) => [i, `segment-${s.firstFrame}`]));
    expect(errors.filter((e) => !/LEASE/.test(e.message)).map((e) => e.message)).toEqual([]);
  });

  it.each([
    ['stored as frames', undefined, '2'],
    ['stored Brotli-compressed', 'br', '3'],
  ] as const)('answers a contrast-injection run sent while acquired (segments %s) with the one-shot output, after its partial result', { timeout: 240_000 }, async (_, encoding, uid) => {
    const frames = 90;
    const bytes = synthesizeXaRun({ seed: 51, rows: 64, columns: 64, frames, bitsStored: 8, contrast: { startFrame: 60, peakFrame: 75, endFrame: 88 } }).bytes;
    const run = new SegmentedRun(device, BUCKET, bytes, { rows: 64, columns: 64, frames, bytesPerSample: 1 }, 'contrast-injection@^1', `1.2.826.0.1.3680043.10.13.${uid}`, 10, encoding);
    await run.upload(s3);
    await run.send(run.open);
    for (const segment of run.segments) await run.send(segment);
    await run.send(run.end);
    const result = await device.next((r) => r.requestId === run.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    const { default: contrast } = (await import('@arteria/contrast-injection')) as { default: Algorithm };
    expect(result.output).toEqual(JSON.parse(JSON.stringify(await runAlgorithmOnDicom(contrast, bytes))));
    expect(device.partials.filter((p) => p.requestId === run.id).map((p) => p.event.key)).toEqual(['contrast-arrival']);
  });
});
