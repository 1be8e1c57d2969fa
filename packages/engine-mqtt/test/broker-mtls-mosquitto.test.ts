import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { brokerServiceCredentials, initPki, issueCertificate, revokeCertificates } from '@arteria/engine-mqtt';
import { deviceTopic, deviceUsername, type DeviceAddress } from '@arteria/protocol';
import { freePort, retryOnAddressInUse, startMosquitto, type RunningMosquitto, ATTACKER, OTHER_TENANT_VICTIM, attempt } from '@arteria/testing';

const PLATFORM_SECRET = 'platform-secret-0123456789';
const REVOKED: DeviceAddress = { tenant: 'demo', device: 'lost' };

describe('Mosquitto with client certificates from Arteria\'s CA and its CRL', () => {
  let dir: string;
  let broker: RunningMosquitto;
  let servicePort: number;
  let ca: Buffer;
  const certs = new Map<string, { cert: Buffer; key: Buffer }>();
  const url = (): string => `mqtts://127.0.0.1:${broker.port}`;
  const device = (who: DeviceAddress, clientId: string, clean: boolean) => ({ ca, ...certs.get(deviceUsername(who)), clientId, clean });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mosquitto-mtls-'));
    const pki = await initPki(path.join(dir, 'pki'));
    const server = await issueCertificate(pki.dir, { kind: 'server', name: 'broker', hosts: ['127.0.0.1'] });
    for (const who of [ATTACKER, OTHER_TENANT_VICTIM, REVOKED]) {
      const issued = await issueCertificate(pki.dir, { kind: 'device', ...who });
      certs.set(deviceUsername(who), { cert: await readFile(issued.cert), key: await readFile(issued.key) });
    }
    await revokeCertificates(pki.dir, deviceUsername(REVOKED));
    ca = await readFile(pki.caCert);
    // The service port is this test's pick: taken before Mosquitto binds it, both are picked again.
    broker = await retryOnAddressInUse(async () => {
      servicePort = await freePort();
      return startMosquitto(path.join(dir, 'broker'), {
        platformSecret: PLATFORM_SECRET,
        tenants: new Map([['demo', 'demo-tenant-secret-0123456789'], ['hosp2', 'hosp2-tenant-secret-0123456789']]),
        devices: [ATTACKER, OTHER_TENANT_VICTIM, REVOKED],
        tls: { caFile: pki.caCert, certFile: server.cert, keyFile: server.key, crlFile: pki.crl, clientCertificates: { servicePort } },
      });
    });
  });
  afterAll(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('admits a device by its certificate alone; refuses no certificate and a revoked one', async () => {
    const conf = await readFile(broker.files.conf, 'utf8');
    expect(conf).toContain('require_certificate true\nuse_identity_as_username true\nuse_username_as_clientid true\ncrlfile ');
    const own = await attempt(url(), device(ATTACKER, 'demo.deva', true));
    expect(own.connected).toBe(true);
    if (own.connected) await own.client.endAsync();
    expect((await attempt(url(), { ca, clientId: 'demo.deva', clean: true, username: 'demo/deva', password: 'any' })).connected).toBe(false);
    expect((await attempt(url(), device(REVOKED, 'demo.lost', true))).connected).toBe(false);
  });

  it("confines a device to its own session whatever client id it sends: the victim keeps its queued result", async () => {
    const victim = await attempt(url(), device(OTHER_TENANT_VICTIM, 'hosp2.icu-1', false));
    if (!victim.connected) throw new Error(`victim could not connect: ${String(victim.code)}`);
    await victim.client.subscribeAsync(deviceTopic(OTHER_TENANT_VICTIM, 'results'), { qos: 1 });
    await victim.client.endAsync();
    const worker = await attempt(`mqtts://127.0.0.1:${servicePort}`, { ca, ...brokerServiceCredentials(PLATFORM_SECRET, 'worker'), clientId: 'arteria-worker-suite', clean: true, protocolVersion: 5 });
    if (!worker.connected) throw new Error(`worker could not connect: ${String(worker.code)}`);
    await worker.client.publishAsync(deviceTopic(OTHER_TENANT_VICTIM, 'results'), 'queued-mtls', { qos: 1 });
    // The attacker resumes "hosp2.icu-1" and subscribes to everything its ACL allows: it gets nothing of the victim's.
    const attacker = await attempt(url(), device(ATTACKER, 'hosp2.icu-1', false));
    if (!attacker.connected) throw new Error('the attacker could not open its own session');
    const stolen: string[] = [];
    attacker.client.on('message', (_topic, payload) => stolen.push(payload.toString()));
    await attacker.client.subscribeAsync(deviceTopic(ATTACKER, 'results'), { qos: 1 });
    // The victim reconnects: its session still holds the queued result, and the attacker's connection did not end it.
    const received = await new Promise<string>((resolve, reject) => {
      const client = mqtt.connect(url(), { ...device(OTHER_TENANT_VICTIM, 'hosp2.icu-1', false), protocolVersion: 4, reconnectPeriod: 0 });
      client.on('message', (_topic, payload) => {
        resolve(payload.toString());
        client.end();
      });
      client.on('error', reject);
    });
    expect(received).toBe('queued-mtls');
    // A round trip on the attacker's connection after the victim's: still open, still nothing stolen.
    await attacker.client.publishAsync(deviceTopic(ATTACKER, 'status'), '{}', { qos: 1 });
    expect(stolen).toEqual([]);
    await attacker.client.endAsync();
    await worker.client.endAsync();
  });

  it('keeps platform services on their own listener: devices have no password there', async () => {
    const ingest = await attempt(`mqtts://127.0.0.1:${servicePort}`, { ca, ...brokerServiceCredentials(PLATFORM_SECRET, 'ingest'), clientId: 'arteria-ingest-pod-1', clean: true, protocolVersion: 5 });
    expect(ingest.connected).toBe(true);
    if (ingest.connected) await ingest.client.endAsync();
    const byToken = await attempt(`mqtts://127.0.0.1:${servicePort}`, { ca, clientId: 'demo.deva', clean: true, username: 'demo/deva', password: 'any-token' });
    expect(byToken.connected).toBe(false);
  });
});
