import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttResultPublisher, loadMqttTls } from '@arteria/engine-mqtt';
import { tempDir } from '@arteria/testing';

const run = promisify(execFile);

describe('platform processes reach an mqtts:// broker that requires client certificates', () => {
  let dir: { dir: string; remove(): Promise<void> };
  let mosquitto: ChildProcess;
  let url: string;

  beforeAll(async () => {
    dir = await tempDir('mqtt-tls');
    const ssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir.dir });
    await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Arteria test CA');
    await writeFile(join(dir.dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const name of ['broker', 'worker']) {
      await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...(name === 'broker' ? ['-extfile', 'san.ext'] : []));
    }
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as { port: number }).port;
    probe.close();
    url = `mqtts://127.0.0.1:${port}`;
    const conf = join(dir.dir, 'mosquitto.conf');
    await writeFile(conf, [`user ${process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root')}`, `listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false',
      `cafile ${join(dir.dir, 'ca.pem')}`, `certfile ${join(dir.dir, 'broker.pem')}`, `keyfile ${join(dir.dir, 'broker.key')}`, 'require_certificate true', ''].join('\n'));
    mosquitto = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  });

  afterAll(async () => {
    mosquitto?.kill('SIGKILL');
    await dir?.remove();
  });

  const files = (overrides: Partial<{ caFile: string; certFile: string; keyFile: string }> = {}): { caFile: string; certFile: string; keyFile: string } => ({
    caFile: join(dir.dir, 'ca.pem'),
    certFile: join(dir.dir, 'worker.pem'),
    keyFile: join(dir.dir, 'worker.key'),
    ...overrides,
  });

  it('publishes results with the configured CA and client certificate', async () => {
    const tls = await loadMqttTls(files());
    let publisher: MqttResultPublisher | undefined;
    for (let i = 0; publisher === undefined; i += 1) {
      try {
        publisher = await MqttResultPublisher.connect({ url, tls, serviceName: 'worker', platformSecret: 'x'.repeat(20), credentials: { username: 'worker', password: 'unused' } });
      } catch (err) {
        if (i > 50) throw err; // the broker may still be starting
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await publisher.publish({ v: 1, requestId: 'r1', tenant: 'acme', device: 'd1', status: 'rejected', error: { code: 'INVALID_JSON', message: 'x' }, timings: {} });
    await publisher.close();
  });

  it('is refused without a client certificate', async () => {
    const tls = await loadMqttTls(files({ certFile: '', keyFile: '' }));
    await expect(MqttResultPublisher.connect({ url, tls, serviceName: 'worker', platformSecret: 'x'.repeat(20) })).rejects.toThrow(/certificate required/);
  });

  it('names an unreadable file and refuses a certificate without its key', async () => {
    await expect(loadMqttTls(files({ caFile: '/nonexistent/ca.pem' }))).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('/nonexistent/ca.pem') as unknown });
    await expect(loadMqttTls(files({ keyFile: '' }))).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
