import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { StatusV1, decodePayload } from '@arteria/protocol';
import { freePort, gatewayOptions, memoryLogger, startServers, type Servers } from './helpers.js';

const run = promisify(execFile);

/** A private CA, a broker certificate for 127.0.0.1 and one client certificate, made with openssl. */
async function makeCertificates(dir: string): Promise<void> {
  const ssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Arteria test CA');
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const name of ['broker', 'device']) {
    await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...(name === 'broker' ? ['-extfile', 'san.ext'] : []));
  }
}

describe('MQTT over TLS with a client certificate (Mosquitto, require_certificate)', () => {
  let servers: Servers;
  let mosquitto: ChildProcess;
  let url: string;
  let certs: string;

  beforeAll(async () => {
    servers = await startServers();
    certs = servers.directory;
    await makeCertificates(certs);
    const port = await freePort();
    url = `mqtts://127.0.0.1:${port}`;
    const conf = join(certs, 'mosquitto.conf');
    await writeFile(
      conf,
      [`user ${process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root')}`, `listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'set_tcp_nodelay true',
        `cafile ${join(certs, 'ca.pem')}`, `certfile ${join(certs, 'broker.pem')}`, `keyfile ${join(certs, 'broker.key')}`, 'require_certificate true', ''].join('\n'),
    );
    mosquitto = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
    // Ready when a TLS client with a certificate can connect.
    for (let i = 0; ; i += 1) {
      try {
        const probe = await mqtt.connectAsync(url, { ca: await readPem('ca.pem'), cert: await readPem('device.pem'), key: await readPem('device.key'), reconnectPeriod: 0, connectTimeout: 1000 });
        await probe.endAsync();
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  afterAll(async () => {
    mosquitto?.kill('SIGKILL');
    await servers?.close();
  });

  const readPem = async (name: string): Promise<Buffer> => (await import('node:fs/promises')).readFile(join(certs, name));

  it('connects with the configured CA and client certificate and announces itself', async () => {
    const watcher = await mqtt.connectAsync(url, { ca: await readPem('ca.pem'), cert: await readPem('device.pem'), key: await readPem('device.key'), reconnectPeriod: 0 });
    const statuses: StatusV1[] = [];
    watcher.on('message', (_topic, payload) => statuses.push(decodePayload(StatusV1, payload)));
    await watcher.subscribeAsync('arteria/v1/acme/tls-1/status', { qos: 1 });
    const gateway = new Gateway(
      gatewayOptions(servers, 'tls-1', { mqttUrl: url, tls: { caFile: join(certs, 'ca.pem'), certFile: join(certs, 'device.pem'), keyFile: join(certs, 'device.key') } }),
      { logger: memoryLogger() },
    );
    try {
      await gateway.start();
      expect(gateway.stats().connected).toBe(true);
      for (let i = 0; i < 100 && !statuses.some((s) => s.state === 'online'); i += 1) await new Promise((r) => setTimeout(r, 50));
      expect(statuses.some((s) => s.state === 'online')).toBe(true);
    } finally {
      await gateway.close();
      await watcher.endAsync();
    }
  });

  it('does not connect without a client certificate, and says why a missing file is wrong', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'tls-2', { mqttUrl: url, tls: { caFile: join(certs, 'ca.pem') }, mqttConnectTimeoutMs: 2000 }), { logger });
    try {
      await gateway.start();
      expect(gateway.stats().connected).toBe(false);
    } finally {
      await gateway.close();
    }
    const broken = new Gateway(gatewayOptions(servers, 'tls-3', { mqttUrl: url, tls: { caFile: join(certs, 'missing.pem') } }), { logger });
    await expect(broken.start()).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('missing.pem') as unknown });
    await broken.close();
  });
});
