import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { Ingest } from '@arteria/ingest';
import { MqttIngestService, brokerServiceCredentials } from '@arteria/engine-mqtt';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { decodeTask } from '@arteria/ports';
import { RequestV1, deviceClientId, legacyDeviceToken, deviceTopic, deviceUsername, encodePayload, requestId, type AlgorithmRef } from '@arteria/protocol';
import { startMosquitto, type RunningMosquitto } from '@arteria/testing';
import { KeptResults } from './support/kept-results.js';

const TENANTS = new Map([['acme', 'acme-tenant-secret-0123456789']]);
const PLATFORM_SECRET = 'platform-secret-0123456789';
const DEVICE = { tenant: 'acme', device: 'dev1' };
const SHA = 'e'.repeat(64);
const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const IN_PROPERTIES = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const IN_PAYLOAD = '00-11111111111111111111111111111111-2222222222222222-01';

function request(instanceUid: string, trace?: { traceparent: string }): RequestV1 {
  const uri = `s3://runs/acme/dev1/${instanceUid}.dcm`;
  return RequestV1.parse({
    v: 1,
    id: requestId({ ...DEVICE, instanceUid, sha256: SHA, algorithm: 'echo@^1', inputUris: [uri] }),
    ...DEVICE,
    algorithm: 'echo@^1',
    instanceUid,
    inputs: [{ uri, size: 10, sha256: SHA, contentType: 'application/dicom' }],
    timings: { published: Date.now() },
    ...(trace ? { trace } : {}),
  });
}

/**
 * Over Mosquitto (MQTT 5), a device may carry its trace context in the user properties
 * `traceparent` / `tracestate`: the cluster ingest reads them (before the payload's
 * `trace`) and puts the trace on the queued task.
 */
describe('trace context in MQTT 5 user properties, through Mosquitto to the queued task', () => {
  let dir: string;
  let broker: RunningMosquitto;
  let queue: SqliteWorkQueue;
  let ledger: SqliteRequestLedger;
  let service: MqttIngestService;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-trace-mqtt5-'));
    broker = await startMosquitto(path.join(dir, 'broker'), { platformSecret: PLATFORM_SECRET, tenants: TENANTS, devices: [DEVICE] });
    queue = new SqliteWorkQueue({ path: path.join(dir, 'queue.db'), maxDeliveries: 3 });
    ledger = new SqliteRequestLedger({ path: path.join(dir, 'ledger.db') });
    const ingest = new Ingest({ queue, ledger, results: new KeptResults(), bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) } });
    const credentials = brokerServiceCredentials(PLATFORM_SECRET, 'ingest');
    service = await MqttIngestService.start(
      { url: `mqtt://127.0.0.1:${broker.port}`, ...credentials, clientId: `${credentials.username}-trace`, sharedGroup: 'ingest', sessionExpiryS: 0, keepaliveS: 10 },
      { ingest },
    );
  }, 30_000);
  afterAll(async () => {
    await service?.close(1_000);
    await broker?.stop();
    await queue?.close();
    await ledger?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('puts the trace from the user properties on the task; the properties win over the payload', async () => {
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
      protocolVersion: 5,
      clientId: deviceClientId(DEVICE),
      username: deviceUsername(DEVICE),
      password: legacyDeviceToken(TENANTS.get('acme') ?? '', DEVICE),
      clean: true,
    });
    try {
      const topic = deviceTopic(DEVICE, 'requests');
      const userProperties = { traceparent: IN_PROPERTIES, tracestate: 'vendor=abc' };
      await device.publishAsync(topic, encodePayload(request('1.2.1')), { qos: 1, properties: { userProperties } });
      await device.publishAsync(topic, encodePayload(request('1.2.2', { traceparent: IN_PAYLOAD })), { qos: 1, properties: { userProperties } });
      // A malformed traceparent is ignored (W3C): the payload's trace stands.
      await device.publishAsync(topic, encodePayload(request('1.2.3', { traceparent: IN_PAYLOAD })), { qos: 1, properties: { userProperties: { traceparent: 'garbage' } } });
      const traces = new Map<string, unknown>();
      for (let i = 0; i < 100 && traces.size < 3; i++) {
        for (const lease of await queue.lease({ max: 3, visibilityMs: 10_000, waitMs: 200 })) {
          const task = decodeTask(lease.payload);
          traces.set(task.request.instanceUid, task.trace);
        }
      }
      // Tracing off in this ingest: the trace passes through unchanged.
      expect(traces.get('1.2.1')).toEqual({ traceparent: IN_PROPERTIES, tracestate: 'vendor=abc' });
      expect(traces.get('1.2.2')).toEqual({ traceparent: IN_PROPERTIES, tracestate: 'vendor=abc' });
      expect(traces.get('1.2.3')).toEqual({ traceparent: IN_PAYLOAD });
    } finally {
      await device.endAsync();
    }
  });
});
