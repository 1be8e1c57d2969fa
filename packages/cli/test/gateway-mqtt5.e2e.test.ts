import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { EMBEDDED_S3_CREDENTIALS, IngestRole, WorkerRole, parseClusterConfig } from '@arteria/platform';
import { EmbeddedObjectStore } from '@arteria/engine-s3';
import { brokerServiceCredentials } from '@arteria/engine-mqtt';
import { deviceTopic, legacyDeviceToken, parseTraceparent } from '@arteria/protocol';
import { startMosquitto, type RunningMosquitto } from '@arteria/testing';
import { until } from './support/cluster.js';
import { OtlpReceiver } from './support/otlp-receiver.js';

const TENANT_SECRET = 'mqtt5-tenant-secret-0123456789';
const PLATFORM_SECRET = 'mqtt5-platform-secret-0123456789';
const DEVICE = { tenant: 'acme', device: 'cath-lab-5' };
const BUCKET = 'arteria-runs';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

interface SeenMessage {
  payload: Record<string, unknown>;
  userProperties: Record<string, string | string[]> | undefined;
}

/**
 * A gateway on Mosquitto speaks MQTT 5: its trace context crosses the broker in the user
 * properties of its request (not in the payload), the cluster ingest reads it there, and
 * the worker's spans and the result belong to the gateway's trace.
 */
describe('gateway → Mosquitto (MQTT 5 user properties) → cluster ingest → worker: one trace', () => {
  let dir: string;
  let broker: RunningMosquitto;
  const store = new EmbeddedObjectStore();
  let receiver: OtlpReceiver;
  let ingest: IngestRole;
  let worker: WorkerRole;
  let observer: MqttClient;
  const seen: SeenMessage[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mqtt5-'));
    broker = await startMosquitto(path.join(dir, 'broker'), { platformSecret: PLATFORM_SECRET, tenants: new Map([['acme', TENANT_SECRET]]), devices: [DEVICE] });
    await store.start({ host: '127.0.0.1', port: 0, directory: path.join(dir, 'objects'), buckets: [BUCKET] });
    receiver = await OtlpReceiver.start();
    const mqttUrl = `mqtt://127.0.0.1:${broker.port}`;
    const config = (instanceId: string) =>
      parseClusterConfig({
        instanceId,
        dataDir: dir,
        mqtt: { url: mqttUrl },
        s3: { endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS },
        queue: { kind: 'sqlite' },
        http: { port: 0 },
        worker: { concurrency: 1, leaseWaitMs: 200, threadsPerAlgorithm: 1 },
        algorithms: { bundled: false },
        tracing: { otlpEndpoint: receiver.url },
      });
    const deps = { platformSecret: PLATFORM_SECRET, algorithmDirs: [algorithmDir] };
    ingest = await IngestRole.start(config('ingest-0'), deps);
    worker = await WorkerRole.start(config('worker-0'), deps);
    // What crossed the broker: ingest's own credentials, on a subscription of its own.
    const credentials = brokerServiceCredentials(PLATFORM_SECRET, 'ingest');
    observer = await mqtt.connectAsync(mqttUrl, { protocolVersion: 5, clientId: `${credentials.username}-observer`, ...credentials, clean: true, reconnectPeriod: 0 });
    observer.on('message', (_topic, payload, packet) => seen.push({ payload: JSON.parse(payload.toString('utf8')) as Record<string, unknown>, userProperties: packet.properties?.userProperties }));
    await observer.subscribeAsync(deviceTopic(DEVICE, 'requests'), { qos: 1 });
  }, 60_000);

  afterAll(async () => {
    await observer?.endAsync(true);
    await worker?.close();
    await ingest?.close();
    await broker?.stop();
    await store.close();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('carries the gateway trace in the user properties and the worker joins it', async () => {
    const status = path.join(dir, 'gateway.db');
    await using gateway = new Gateway(
      {
        ...DEVICE,
        token: legacyDeviceToken(TENANT_SECRET, DEVICE),
        mqttUrl: `mqtt://127.0.0.1:${broker.port}`,
        s3: { endpoint: store.endpoint, bucket: BUCKET, ...EMBEDDED_S3_CREDENTIALS },
        outboxPath: status,
        algorithm: 'contrast-injection@^1',
        tracing: { otlpEndpoint: receiver.url },
      },
      { env: {} },
    );
    await gateway.start();
    const bytes = synthesizeXaRun({ seed: 5, rows: 64, columns: 64, frames: 12, frameRateHz: 15, bitsStored: 12, contrast: { startFrame: 3, peakFrame: 6, endFrame: 10 } }).bytes;
    const result = await gateway.send({ bytes, name: 'run.dcm' });
    expect(result.status).toBe('ok');
    const traceId = parseTraceparent(result.trace?.traceparent)?.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);

    // On the wire: the request without a trace field, its context in the user properties.
    const request = seen.find((m) => m.payload.id === result.requestId);
    expect(request?.payload.trace).toBeUndefined();
    const traceparent = request?.userProperties?.traceparent;
    expect(typeof traceparent === 'string' ? parseTraceparent(traceparent)?.traceId : undefined).toBe(traceId);

    // The worker's spans belong to the gateway's trace.
    await gateway.close();
    const spans = await until(() => {
      const found = receiver.trace(traceId ?? '');
      return Promise.resolve(['arteria.gateway.request', 'arteria.ingest.admit', 'arteria.worker.task'].every((n) => found.has(n)) ? found : undefined);
    }, 'the gateway, ingest and worker spans of the trace');
    expect(spans.get('arteria.worker.task')?.attributes).toMatchObject({ 'arteria.request.id': result.requestId });
    expect(spans.get('arteria.ingest.admit')?.parentSpanId).toBe(spans.get('arteria.gateway.request')?.spanId);
  }, 60_000);
});
