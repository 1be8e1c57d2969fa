import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { S3Client } from '@aws-sdk/client-s3';
import { synthesizeXaRun } from '@arteria/dicom';
import { legacyDeviceToken, encodePayload } from '@arteria/protocol';
import { EMBEDDED_S3_CREDENTIALS } from '../src/embedded/embedded-platform.js';
import { EmbeddedObjectStore, createS3Client } from '@arteria/engine-s3';
import { IngestRole } from '../src/cluster/ingest-role.js';
import { NatsWorkQueue, subjectToTopic } from '@arteria/engine-nats';
import { WorkerRole } from '../src/cluster/worker-role.js';
import { type ClusterConfig, parseClusterConfig } from '../src/cluster/cluster-config.js';
import { brokerServicePassword, brokerServiceUsername } from '@arteria/engine-mqtt';
import { TestDevice, TestNatsServer } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, tempDir } from './support/platform.js';

const BUCKET = 'arteria-runs';
const STREAM = 'ARTERIA_REQUESTS';
const PLATFORM_SECRET = 'capture-platform-secret-0123456789';

/** NATS accounts as docs/operations.md describes them: each device on its own subjects. */
function authorization(devices: string[]): string[] {
  const device = (name: string): string => {
    const base = `arteria.v1.acme.${name}`;
    return `{ user: "acme/${name}", password: "${legacyDeviceToken(SECRET, { tenant: 'acme', device: name })}", allowed_connection_types: ["MQTT"], permissions: { publish: { allow: ["${base}.requests", "${base}.status"] }, subscribe: { allow: ["${base}.results", "$MQTT.sub.>"] } } }`;
  };
  const service = (role: 'ingest' | 'worker'): string =>
    `{ user: "${brokerServiceUsername(role)}", password: "${brokerServicePassword(PLATFORM_SECRET, role)}", allowed_connection_types: ["MQTT"], permissions: { publish: { allow: ["arteria.v1.*.*.results"] }, subscribe: { deny: [">"] } } }`;
  // The platform's own NATS connections (queue, ledger, capture consumer) in this test come without credentials.
  return ['authorization {', '  users: [', ...devices.map(device), service('ingest'), service('worker'), '    { user: "arteria-platform", password: "unused-in-this-test", allowed_connection_types: ["STANDARD"] }', '  ]', '}', 'no_auth_user: "arteria-platform"'];
}

/**
 * Devices publish into nats-server's MQTT listener; a JetStream stream captures the
 * requests, `arteria ingest` (ingest.source: nats-stream) admits them from the stream and
 * a worker answers over the same MQTT listener.
 */
describe('ingest from a NATS stream capturing MQTT requests', () => {
  let server: TestNatsServer;
  const store = new EmbeddedObjectStore();
  let s3: S3Client;
  let ingest: IngestRole;
  let worker: WorkerRole;
  let device: TestDevice;
  let removeDir: () => Promise<void>;
  const run = synthesizeXaRun({ seed: 11, rows: 32, columns: 32, frames: 3, bitsStored: 8 });
  const errors: Error[] = [];

  beforeAll(async () => {
    const tmp = await tempDir('nats-capture');
    removeDir = () => tmp.remove();
    server = await TestNatsServer.start(authorization(['cath-lab-1', 'cath-lab-2']), { mqtt: true });
    await store.start({ host: '127.0.0.1', port: 0, directory: path.join(tmp.dir, 'objects'), buckets: [BUCKET] });
    s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    const config = (instanceId: string) =>
      parseClusterConfig({
        instanceId,
        dataDir: tmp.dir,
        mqtt: { url: server.mqttUrl },
        ingest: { source: 'nats-stream', natsStream: STREAM, natsAckWaitMs: 5_000 },
        s3: { endpoint: store.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
        queue: { kind: 'nats', natsServers: server.natsUrl },
        ledger: { kind: 'nats' },
        http: { port: 0 },
        worker: { concurrency: 1, leaseWaitMs: 200, threadsPerAlgorithm: 1 },
        algorithms: { bundled: false },
      });
    const deps = { platformSecret: PLATFORM_SECRET, algorithmDirs: [fixtureAlgorithm('echo')], onError: (err: Error) => errors.push(err) };
    ingest = await IngestRole.start(config('ingest-0'), deps);
    worker = await WorkerRole.start(config('worker-0'), deps);
    device = await TestDevice.connect(server.mqttUrl, SECRET, 'acme', 'cath-lab-1', { token: legacyDeviceToken(SECRET, { tenant: 'acme', device: 'cath-lab-1' }) });
  }, 30_000);

  afterAll(async () => {
    await device?.close();
    await ingest?.close();
    await worker?.close();
    s3?.destroy();
    await store.close();
    await server?.stop();
    await removeDir?.();
  });

  it('maps capture subjects back to device topics', () => {
    expect(subjectToTopic('arteria.v1.acme.cath-lab-1.requests')).toBe('arteria/v1/acme/cath-lab-1/requests');
  });

  it('admits a request published over MQTT QoS 1 and returns the result over MQTT', async () => {
    const request = await device.prepare(s3, BUCKET, run.bytes, 'echo@^1', '1.2.3.201');
    await device.publishRaw(encodePayload(request));
    const result = await device.next((r) => r.requestId === request.id);
    expect(result.status).toBe('ok');
    expect(result.algorithm?.name).toBe('echo');
    await expect.poll(() => ingest.status().handled, { timeout: 20_000 }).toBe(1);
    await expect.poll(() => worker.status().processed, { timeout: 20_000 }).toBe(1);
    // Acknowledged after enqueue: the work-queue stream no longer holds it.
    const nc = await connect({ servers: server.natsUrl });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(STREAM);
      expect(info.config.subjects).toEqual(['arteria.v1.*.*.requests']);
      expect(info.state.messages).toBe(0);
    } finally {
      await nc.close();
    }
  });

  it('answers bad requests with typed rejections', async () => {
    const unknown = await device.prepare(s3, BUCKET, run.bytes, 'echo@^2', '1.2.3.202');
    await device.publishRaw(encodePayload(unknown));
    const rejected = await device.next((r) => r.requestId === unknown.id);
    expect(rejected.status).toBe('rejected');
    expect(rejected.error?.code).toBe('UNKNOWN_ALGORITHM');

    await device.publishRaw('{ not json');
    const garbage = await device.next((r) => r.requestId === 'unknown');
    expect(garbage.status).toBe('rejected');
    expect(garbage.error?.code).toBe('INVALID_JSON');

    const otherDevice = await device.prepare(s3, BUCKET, run.bytes, 'echo@^1', '1.2.3.203');
    await device.publishRaw(encodePayload({ ...otherDevice, device: 'cath-lab-2' }));
    const forged = await device.next((r) => r.requestId === otherDevice.id);
    expect(forged.error?.code).toBe('NOT_AUTHORIZED');
  });

  it('answers an admission probe (cluster ingest from the capture stream) with each algorithm\'s verdict and resolved version', async () => {
    const handled = ingest.status().handled;
    const answer = await device.probe(['echo@^1', 'echo@^2']);
    expect(answer).toMatchObject({ kind: 'probe-answer', tenant: 'acme', device: device.device });
    expect(answer.algorithms).toEqual([
      { spec: 'echo@^1', status: 'accepted', version: expect.stringMatching(/^1\./) as unknown },
      { spec: 'echo@^2', status: 'refused', error: { code: 'UNKNOWN_ALGORITHM', message: expect.any(String) as unknown } },
    ]);
    expect(answer.capabilities).toBeUndefined(); // not asked: a gateway that never asks never sees the field
    // Asked: the segment encodings its workers expand, so that a gateway compresses only for a platform that reads it.
    const asked = await device.probe(['echo@^1'], undefined, { capabilities: true });
    expect(asked.capabilities).toEqual({ segmentEncodings: ['br'] });
    expect(device.results.some((r) => r.requestId === 'unknown' && r.error?.code === 'INVALID_REQUEST')).toBe(false);
    // Handled by ingest (other copies on the shared capture stream may be handled meanwhile).
    await expect.poll(() => ingest.status().handled, { timeout: 20_000 }).toBeGreaterThan(handled);
  });

  it('keeps a device on its own subjects with NATS permissions', async () => {
    const stored = async (): Promise<number> => {
      const nc = await connect({ servers: server.natsUrl });
      try {
        return (await (await jetstreamManager(nc)).streams.info(STREAM)).state.last_seq;
      } finally {
        await nc.close();
      }
    };
    const before = await stored();
    const forged = await device.prepare(s3, BUCKET, run.bytes, 'echo@^1', '1.2.3.204');
    // Publishing as another device is refused by the server (2.9 still sends the PUBACK): the stream never sees it.
    await device.client.publishAsync('arteria/v1/acme/cath-lab-2/requests', encodePayload({ ...forged, device: 'cath-lab-2' }), { qos: 1 });
    // The server refuses any other device's results, and its own `$MQTT.sub` delivery subjects.
    await expect(device.client.subscribeAsync('arteria/v1/acme/cath-lab-2/results', { qos: 1 })).rejects.toThrow();
    await expect(device.client.subscribeAsync('$MQTT/sub/#', { qos: 1 })).rejects.toThrow();
    const own = await device.prepare(s3, BUCKET, run.bytes, 'echo@^1', '1.2.3.205');
    await device.publishRaw(encodePayload(own));
    expect((await device.next((r) => r.requestId === own.id)).status).toBe('ok');
    // One connection's publishes are processed in order: only the device's own request was stored.
    expect(await stored()).toBe(before + 1);
    // The platform's credential-less NATS user is not for MQTT clients: an anonymous device is refused.
    await expect(mqtt.connectAsync(server.mqttUrl, { protocolVersion: 4, clientId: 'anonymous', reconnectPeriod: 0, connectTimeout: 5_000 })).rejects.toThrow();
    expect(errors).toEqual([]);
  });
});

/** The caveat docs/operations.md states, on the nats-server these tests run (2.9). */
describe('NATS MQTT: a PUBACK does not prove that a stream stored the publish', () => {
  it('acknowledges QoS 1 publishes that the capture stream refused', async () => {
    const server = await TestNatsServer.start([], { mqtt: true });
    const nc = await connect({ servers: server.natsUrl });
    const client = await mqtt.connectAsync(server.mqttUrl, { protocolVersion: 4, clientId: 'caveat', reconnectPeriod: 0 });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'FULL', subjects: ['arteria.v1.*.*.requests'], retention: RetentionPolicy.Workqueue, storage: StorageType.File, max_msgs: 1, discard: DiscardPolicy.New });
      for (const n of [1, 2, 3]) await client.publishAsync('arteria/v1/acme/cath-lab-1/requests', `request ${n}`, { qos: 1 });
      // No stream matches this one at all; it is acknowledged just the same.
      await client.publishAsync('arteria/v1/acme/cath-lab-1/nowhere', 'lost', { qos: 1 });
      // Three PUBACKs, one stored (the store may lag the PUBACK, hence the poll).
      await expect.poll(async () => (await jsm.streams.info('FULL')).state.messages, { timeout: 20_000 }).toBe(1);
      expect((await jsm.streams.info('FULL')).state.messages).toBe(1);
    } finally {
      await client.endAsync();
      await nc.close();
      await server.stop();
    }
  });
});

describe('ingest from a NATS capture stream while the queue is down', () => {
  it('leaves the request in the stream until it is enqueued, then completes it', async () => {
    const tmp = await tempDir('nats-capture-outage');
    const capture = await TestNatsServer.start([], { mqtt: true });
    const queue = await TestNatsServer.start();
    const store = new EmbeddedObjectStore();
    await store.start({ host: '127.0.0.1', port: 0, directory: path.join(tmp.dir, 'objects'), buckets: [BUCKET] });
    const s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    const nc = await connect({ servers: capture.natsUrl });
    const errors: Error[] = [];
    const roles: { close(): Promise<unknown> }[] = [];
    let device: TestDevice | undefined;
    try {
      const config = (instanceId: string) =>
        parseClusterConfig({
          instanceId,
          dataDir: tmp.dir,
          mqtt: { url: capture.mqttUrl },
          ingest: { source: 'nats-stream', natsServers: capture.natsUrl, natsStream: STREAM },
          s3: { endpoint: store.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
          queue: { kind: 'nats', natsServers: queue.url },
          http: { port: 0 },
          worker: { concurrency: 1, leaseWaitMs: 200, threadsPerAlgorithm: 1 },
          algorithms: { bundled: false },
        });
      const deps = {
        platformSecret: PLATFORM_SECRET,
        algorithmDirs: [fixtureAlgorithm('echo')],
        onError: (err: Error) => errors.push(err),
        // As openSharedStores opens it, with a shorter request timeout: the outage is noticed sooner.
        queueFactories: { nats: (c: ClusterConfig) => NatsWorkQueue.open({ servers: [queue.url], name: c.queue.natsStream, maxDeliveries: c.queue.maxDeliveries, ackWaitMs: c.worker.visibilityMs, requestTimeoutMs: 1_000 }) },
      };
      const ingest = await IngestRole.start(config('ingest-0'), deps);
      roles.push(ingest);
      roles.push(await WorkerRole.start(config('worker-0'), deps));
      device = await TestDevice.connect(capture.mqttUrl, SECRET, 'acme', 'cath-lab-1', { token: legacyDeviceToken(SECRET, { tenant: 'acme', device: 'cath-lab-1' }) });
      const jsm = await jetstreamManager(nc);

      await queue.kill();
      const run = synthesizeXaRun({ seed: 12, rows: 32, columns: 32, frames: 2, bitsStored: 8 });
      const request = await device.prepare(s3, BUCKET, run.bytes, 'echo@^1', '1.2.3.301');
      await device.publishRaw(encodePayload(request));
      // Ingest received it, could not enqueue, and did not acknowledge: the stream keeps it.
      await expect.poll(() => errors.some((e) => e.message.includes('QUEUE_UNAVAILABLE') || ('code' in e && e.code === 'QUEUE_UNAVAILABLE')), { timeout: 15_000 }).toBe(true);
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(1);
      expect(ingest.status().handled).toBe(0);

      await queue.start();
      const result = await device.next((r) => r.requestId === request.id);
      expect(result.status).toBe('ok');
      await expect.poll(async () => (await jsm.streams.info(STREAM)).state.messages, { timeout: 20_000 }).toBe(0);
    } finally {
      await device?.close();
      for (const role of roles) await role.close();
      await nc.close();
      s3.destroy();
      await store.close();
      await queue.stop();
      await capture.stop();
      await tmp.remove();
    }
  }, 60_000);
});
