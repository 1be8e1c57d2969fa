import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerServiceCredentials, initPki, issueCertificate } from '@arteria/engine-mqtt';
import { legacyDeviceToken, type DeviceAddress } from '@arteria/protocol';
import { startMosquitto, type RunningMosquitto, SUITE_DEVICES, attempt, takeoverSuite, type BrokerUnderTest, SUITE_TENANTS, SUITE_PLATFORM_SECRET } from '@arteria/testing';

const TENANTS = SUITE_TENANTS as Map<string, string>;
const PLATFORM_SECRET = SUITE_PLATFORM_SECRET;
// Devices recorded without an expiry: the generated password file holds their legacy token.
const password = (device: DeviceAddress): string => legacyDeviceToken(SUITE_TENANTS.get(device.tenant) ?? 'unknown-tenant-secret', device);

describe('Mosquitto with the generated files: a TLS listener by default', () => {
  let dir: string;
  let broker: RunningMosquitto;
  let ca: Buffer;
  let target: BrokerUnderTest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mosquitto-tls-'));
    const pki = await initPki(path.join(dir, 'pki'));
    const server = await issueCertificate(pki.dir, { kind: 'server', name: 'broker', hosts: ['127.0.0.1', 'localhost'] });
    ca = await readFile(pki.caCert);
    broker = await startMosquitto(path.join(dir, 'broker'), { platformSecret: PLATFORM_SECRET, tenants: TENANTS, devices: SUITE_DEVICES, tls: { caFile: pki.caCert, certFile: server.cert, keyFile: server.key } });
    const worker = brokerServiceCredentials(PLATFORM_SECRET, 'worker');
    target = {
      url: `mqtts://127.0.0.1:${broker.port}`,
      tls: () => ({ ca }),
      password,
      service: { ...worker, clientIdPrefix: worker.username, protocolVersion: 5 },
      ingestClientIdPrefix: brokerServiceCredentials(PLATFORM_SECRET, 'ingest').username,
      ingestCredentials: brokerServiceCredentials(PLATFORM_SECRET, 'ingest'),
    };
  });
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps no-delay, admits a device over TLS verified against Arteria\'s CA, and refuses plaintext and unknown CAs', async () => {
    expect(await readFile(broker.files.conf, 'utf8')).toContain('set_tcp_nodelay true');
    const device = { username: 'demo/deva', password: password({ tenant: 'demo', device: 'deva' }), clientId: 'demo.deva', clean: true };
    const tls = await attempt(target.url, { ...device, ca });
    expect(tls.connected).toBe(true);
    if (tls.connected) await tls.client.endAsync();
    expect((await attempt(`mqtt://127.0.0.1:${broker.port}`, { ...device, connectTimeout: 2_000 })).connected).toBe(false);
    // Without Arteria's CA the broker's certificate is not trusted.
    expect((await attempt(target.url, device)).connected).toBe(false);
  });

  // The attacker suite over TLS: the binding does not depend on the transport.
  takeoverSuite(() => target);
});
