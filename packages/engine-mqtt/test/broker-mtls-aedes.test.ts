import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker, initPki, issueCertificate, issuedFiles, revokeCertificates } from '@arteria/engine-mqtt';
import { serviceClientIdPrefix, serviceToken, serviceUsername, type SecurityEvent } from '@arteria/ports';
import { deviceToken, deviceUsername, type DeviceAddress } from '@arteria/protocol';
import { ATTACKER, SUITE_DEVICES, attempt, takeoverSuite, type BrokerUnderTest, SUITE_TENANTS, SUITE_PLATFORM_SECRET } from '@arteria/testing';

const TENANTS = SUITE_TENANTS as Map<string, string>;
const PLATFORM_SECRET = SUITE_PLATFORM_SECRET;
const REVOKED: DeviceAddress = { tenant: 'demo', device: 'lost' };

describe('embedded broker (aedes) with mTLS: the identity is the client certificate', () => {
  const broker = new EmbeddedBroker();
  const events: SecurityEvent[] = [];
  let dir: string;
  let ca: Buffer;
  let url: string;
  const certs = new Map<string, { cert: Buffer; key: Buffer }>();
  let target: BrokerUnderTest;

  /** A device's certificate and key; an unknown device gets the attacker's (all it holds). */
  const material = (device: DeviceAddress): { ca: Buffer; cert: Buffer; key: Buffer } => ({ ca, ...(certs.get(deviceUsername(device)) ?? certs.get(deviceUsername(ATTACKER)) ?? { cert: Buffer.alloc(0), key: Buffer.alloc(0) }) });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mtls-'));
    const pki = await initPki(path.join(dir, 'pki'));
    const server = await issueCertificate(pki.dir, { kind: 'server', name: 'broker', hosts: ['127.0.0.1'] });
    for (const device of [...SUITE_DEVICES, REVOKED]) {
      const issued = await issueCertificate(pki.dir, { kind: 'device', ...device });
      certs.set(deviceUsername(device), { cert: await readFile(issued.cert), key: await readFile(issued.key) });
    }
    ca = await readFile(pki.caCert);
    await broker.start({
      host: '127.0.0.1',
      port: 0,
      secrets: { tenants: TENANTS, platform: PLATFORM_SECRET },
      hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined, onSecurityEvent: (event) => events.push(event) },
      tls: { host: '127.0.0.1', port: 0, caFile: pki.caCert, certFile: server.cert, keyFile: server.key, crlFile: pki.crl, requireCertificate: true },
    });
    url = broker.tlsUrl ?? '';
    const service = (name: string): { username: string; password: string } => ({ username: serviceUsername(name), password: serviceToken(PLATFORM_SECRET, name) });
    target = {
      url,
      // Devices hold only their certificate: no token is sent.
      tls: (who) => (who === 'service' ? { ca } : material(who)),
      password: () => '',
      service: { ...service('worker'), clientIdPrefix: serviceClientIdPrefix('worker'), protocolVersion: 4 },
      ingestClientIdPrefix: serviceClientIdPrefix('ingest'),
      ingestCredentials: service('ingest'),
    };
  });
  afterAll(async () => {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  takeoverSuite(() => target);

  it('admits a device by certificate alone, refuses one without a certificate even with a valid token', async () => {
    const byCert = await attempt(url, { clientId: 'demo.deva', clean: true, ...material(ATTACKER) });
    expect(byCert.connected).toBe(true);
    if (byCert.connected) await byCert.client.endAsync();
    events.length = 0;
    const byToken = await attempt(url, { clientId: 'demo.deva', clean: true, ca, username: 'demo/deva', password: deviceToken(TENANTS.get('demo') ?? '', ATTACKER) });
    expect(byToken.connected).toBe(false);
    expect(events).toEqual([expect.objectContaining({ event: 'login_refused', identity: 'demo/deva', authenticated: false, reason: 'no client certificate' })]);
  });

  it('refuses a certificate whose username claims another device', async () => {
    const other = await attempt(url, { clientId: 'hosp2.icu-1', clean: false, username: 'hosp2/icu-1', password: 'x', ...material(ATTACKER) });
    expect(other.connected).toBe(false);
  });

  it('refuses a revoked certificate once the CRL names it, logging credential_revoked', async () => {
    const before = await attempt(url, { clientId: 'demo.lost', clean: true, ...material(REVOKED) });
    expect(before.connected).toBe(true);
    if (before.connected) await before.client.endAsync();
    await revokeCertificates(path.join(dir, 'pki'), 'demo/lost');
    events.length = 0;
    const after = await attempt(url, { clientId: 'demo.lost', clean: true, ...material(REVOKED) });
    expect(after.connected).toBe(false);
    expect(events).toEqual([expect.objectContaining({ event: 'credential_revoked', identity: 'demo/lost', authenticated: false, clientId: 'demo.lost', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown })]);
    // Other devices are unaffected.
    const still = await attempt(url, { clientId: 'demo.deva', clean: true, ...material(ATTACKER) });
    expect(still.connected).toBe(true);
    if (still.connected) await still.client.endAsync();
  });

  it('refuses a certificate from another CA', async () => {
    const foreign = await initPki(path.join(dir, 'foreign'));
    const issued = await issueCertificate(foreign.dir, { kind: 'device', ...ATTACKER });
    const files = issuedFiles(foreign.dir, 'demo/deva');
    expect(files.cert).toBe(issued.cert);
    const result = await attempt(url, { clientId: 'demo.deva', clean: true, ca, cert: await readFile(issued.cert), key: await readFile(issued.key) });
    expect(result.connected).toBe(false);
  });
});
