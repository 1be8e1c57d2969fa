import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ingest } from '@arteria/ingest';
import { MqttIngestService, brokerServiceCredentials } from '@arteria/engine-mqtt';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { createLogger } from '@arteria/telemetry';
import { type ResultPublisher } from '@arteria/ports';
import { legacyDeviceToken, deviceTopic, deviceUsername, encodePayload, requestId, type RequestV1, type ResultV1 } from '@arteria/protocol';
import { FaultProxy } from '@arteria/testing';
import { startMosquitto } from '../src/chaos/mosquitto.js';
import { until } from '../src/chaos/net.js';
import type { ServerProcess } from '../src/chaos/server-process.js';

const PLATFORM_SECRET = 'self-check-platform-secret-0123456789';
const TENANT_SECRET = 'self-check-tenant-secret-0123456789';
const DEVICE = { tenant: 'acme', device: 'dev1' };

/** The ingest's results port, in process: nothing here is answered over MQTT. */
class NoResults implements ResultPublisher {
  publish(_result: ResultV1): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The connection between an ingest and Mosquitto goes silent without closing (a
 * half-dead path: a NAT or firewall that dropped its state). Nothing tells mqtt.js; the
 * canary self-check does: readiness drops, the ingest subscribes again, then reconnects,
 * and admits device requests again, without a restart.
 */
describe('ingest self-check on a silent broker connection', () => {
  let dir: string;
  let mosquitto: ServerProcess;
  let proxy: FaultProxy;
  let service: MqttIngestService;
  let queue: SqliteWorkQueue;
  const log: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-self-check-'));
    mosquitto = await startMosquitto({ dir, platformSecret: PLATFORM_SECRET, tenants: new Map([[DEVICE.tenant, TENANT_SECRET]]), devices: [DEVICE] });
    proxy = await FaultProxy.start(mosquitto.port);
    queue = new SqliteWorkQueue({ path: path.join(dir, 'queue.db'), maxDeliveries: 3 });
    const ingest = new Ingest({
      queue,
      ledger: new SqliteRequestLedger({ path: path.join(dir, 'ledger.db') }),
      results: new NoResults(),
      bucket: 'runs',
      algorithms: { resolve: () => ({ ref: { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` } }) },
    });
    service = await MqttIngestService.start(
      {
        url: `mqtt://127.0.0.1:${proxy.port}`,
        ...brokerServiceCredentials(PLATFORM_SECRET, 'ingest'),
        clientId: 'arteria-ingest-self-check',
        sharedGroup: 'arteria-ingest',
        sessionExpiryS: 0,
        // Far longer than the test: only the self-check can notice the silence.
        keepaliveS: 300,
        selfCheckIntervalMs: 500,
        selfCheckTimeoutMs: 500,
      },
      { ingest, logger: createLogger({ role: 'ingest', destination: { write: (line: string) => log.push(line) } }) },
    );
  }, 60_000);

  afterAll(async () => {
    await service?.close();
    await proxy?.close();
    await mosquitto?.kill('SIGTERM');
    await queue?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('notices, repairs by subscribing again and then reconnecting, and admits again', async () => {
    await until(() => (service.ready ? true : undefined), 'the first self-check', 10_000);
    proxy.freeze();
    await until(() => (service.ready ? undefined : true), 'readiness to drop', 10_000);
    await until(() => (service.ready ? true : undefined), 'readiness to come back', 20_000);
    const text = log.join('\n');
    expect(text).toContain('subscribing again');
    expect(text).toContain('reconnecting: subscribing again did not bring the canary back');
    expect(text).toMatch(/self-check passed again after \d+ failed check\(s\)/);

    // A device request goes through the repaired path into the queue.
    const depthBefore = (await queue.stats()).ready;
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${mosquitto.port}`, { protocolVersion: 4, clientId: 'acme.dev1', username: deviceUsername(DEVICE), password: legacyDeviceToken(TENANT_SECRET, DEVICE), reconnectPeriod: 0 });
    try {
      const uri = 's3://runs/acme/dev1/1.2.3/x.dcm';
      const request: RequestV1 = {
        v: 1,
        id: requestId({ ...DEVICE, instanceUid: '1.2.3', sha256: 'a'.repeat(64), algorithm: 'echo@^1', inputUris: [uri] }),
        ...DEVICE,
        algorithm: 'echo@^1',
        instanceUid: '1.2.3',
        inputs: [{ uri, size: 10, sha256: 'a'.repeat(64), contentType: 'application/dicom' }],
        priority: 'clinical',
        timings: { published: Date.now() },
      };
      await device.publishAsync(deviceTopic(DEVICE, 'requests'), encodePayload(request), { qos: 1 });
      await until(async () => ((await queue.stats()).ready > depthBefore ? true : undefined), 'the request enqueued', 10_000);
    } finally {
      await device.endAsync();
    }
  }, 60_000);

  it('drains apart from closing, then closes once for every caller', async () => {
    const draining = service.drain(1_000);
    expect(service.state).toBe('draining');
    await Promise.all([draining, service.close(), service.close()]);
    expect(service.state).toBe('closed');
    expect(service.connected).toBe(false);
  }, 30_000);
});
