import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, issueCertificate } from '@arteria/engine-mqtt';
import { startSuiteMosquitto, suiteLegacyPassword as password, type RunningMosquitto, attempt, takeoverSuite, type BrokerUnderTest } from '@arteria/testing';

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
    ({ broker, target } = await startSuiteMosquitto(path.join(dir, 'broker'), { caFile: pki.caCert, certFile: server.cert, keyFile: server.key, ca }));
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
