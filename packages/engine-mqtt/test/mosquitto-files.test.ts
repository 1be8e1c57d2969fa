import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { legacyDeviceToken } from '@arteria/protocol';
import { blockedFolderFor, brokerServiceUsername, initPki, issueCertificate, mosquittoPasswordHash, osUser, writeMosquittoFiles } from '@arteria/engine-mqtt';
import { freePort } from '@arteria/testing';

const run = promisify(execFile);

describe('Mosquitto files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-mosquitto-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('hashes passwords exactly as mosquitto_passwd does', async () => {
    const file = path.join(dir, 'reference');
    await run('mosquitto_passwd', ['-c', '-b', file, 'acme/dev1', 'a-device-token']);
    const line = (await readFile(file, 'utf8')).trim();
    const hash = line.slice(line.lastIndexOf(':') + 1);
    const salt = Buffer.from(hash.split('$')[3] ?? '', 'base64');
    expect(mosquittoPasswordHash('a-device-token', salt)).toBe(hash);
  });

  it('writes a config with TLS, no-delay and no anonymous access, the ACL by %u, and one account per device and service', async () => {
    const pki = await initPki(path.join(dir, 'pki'));
    const server = await issueCertificate(pki.dir, { kind: 'server', name: 'broker', hosts: ['mosquitto.arteria.svc'] });
    const files = await writeMosquittoFiles({
      tls: { caFile: pki.caCert, certFile: server.cert, keyFile: server.key },
      dir: path.join(dir, 'out'),
      installDir: '/mosquitto/config',
      host: '0.0.0.0',
      port: 1883,
      persistenceDir: '/mosquitto/data',
      user: 'mosquitto',
      platformSecret: 'platform-secret-0123456789',
      tenants: new Map([['acme', 'tenant-secret-0123456789']]),
      devices: [{ tenant: 'acme', device: 'dev1' }],
    });
    const conf = await readFile(files.conf, 'utf8');
    expect(conf).toContain('set_tcp_nodelay true');
    expect(conf).toContain('listener 1883 0.0.0.0\nprotocol mqtt\ncafile /mosquitto/config/ca.pem\ncertfile /mosquitto/config/server.pem\nkeyfile /mosquitto/config/server-key.pem');
    for (const copied of ['ca.pem', 'server.pem', 'server-key.pem']) expect((await stat(path.join(dir, 'out', copied))).mode & 0o077).toBe(0);
    expect(conf).toContain('allow_anonymous false');
    expect(conf).toContain('password_file /mosquitto/config/passwords');
    expect(conf).toContain('persistence_location /mosquitto/data/');
    expect(await readFile(files.acl, 'utf8')).toContain('pattern write arteria/v1/%u/requests');
    const accounts = (await readFile(files.passwords, 'utf8')).trim().split('\n').map((l) => l.slice(0, l.lastIndexOf(':')));
    expect(accounts).toEqual([brokerServiceUsername('ingest'), brokerServiceUsername('worker'), brokerServiceUsername('dashboard'), 'acme/dev1']);
    expect((await stat(files.passwords)).mode & 0o077).toBe(0);
    expect((await stat(files.dynsec)).mode & 0o077).toBe(0);
    expect(conf).toContain('plugin_opt_config_file /mosquitto/config/dynamic-security.json');
    const dynsec = JSON.parse(await readFile(files.dynsec, 'utf8')) as { clients: { username: string; clientid?: string }[] };
    expect(dynsec.clients.find((c) => c.username === 'acme/dev1')?.clientid).toBe('acme.dev1');
  });

  it('refuses a plaintext listener others could reach, and a listener with neither TLS nor --plaintext', async () => {
    const base = { dir: path.join(dir, 'plain'), port: 1883, persistenceDir: path.join(dir, 'plain', 'data'), user: 'root', platformSecret: 'platform-secret-0123456789', tenants: new Map(), devices: [] };
    await expect(writeMosquittoFiles({ ...base, host: '0.0.0.0', plaintext: true })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('loopback') as unknown });
    await expect(writeMosquittoFiles({ ...base, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('TLS') as unknown });
    const files = await writeMosquittoFiles({ ...base, host: '127.0.0.1', plaintext: true });
    expect(await readFile(files.conf, 'utf8')).not.toContain('cafile');
  });

  it('refuses a device of a tenant it has no secret for', async () => {
    await expect(
      writeMosquittoFiles({ dir: path.join(dir, 'bad'), host: '127.0.0.1', plaintext: true, port: 1883, persistenceDir: path.join(dir, 'bad', 'data'), user: 'root', platformSecret: 'platform-secret-0123456789', tenants: new Map(), devices: [{ tenant: 'other', device: 'dev1' }] }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  // Run as root, Mosquitto drops to its own user before it opens the password file.
  it.runIf(process.getuid?.() === 0)('as root, gives the password file to the broker user, so Mosquitto can open it and devices log in', async () => {
    const base = path.join(dir, 'root-run');
    await mkdir(base, { recursive: true });
    await chmod(dir, 0o755);
    const port = await freePort();
    const files = await writeMosquittoFiles({
      dir: base,
      host: '127.0.0.1',
      plaintext: true,
      port,
      persistenceDir: path.join(base, 'data'),
      user: 'mosquitto',
      platformSecret: 'platform-secret-0123456789',
      tenants: new Map([['acme', 'tenant-secret-0123456789']]),
      devices: [{ tenant: 'acme', device: 'dev1' }],
    });
    const owner = await osUser('mosquitto');
    const info = await stat(files.passwords);
    expect({ uid: info.uid, others: info.mode & 0o077 }).toEqual({ uid: owner.uid, others: 0 });
    expect(await blockedFolderFor(owner, files.passwords)).toBeUndefined();
    const broker = spawn('/usr/sbin/mosquitto', ['-c', files.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    broker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const client = await connectWhenUp(`mqtt://127.0.0.1:${port}`, { username: 'acme/dev1', password: legacyDeviceToken('tenant-secret-0123456789', { tenant: 'acme', device: 'dev1' }) });
      await client.endAsync();
      expect(stderr).not.toContain('Unable to open pwfile');
      // The dynamic security file is readable too: the device is bound to its client id.
      await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'acme/dev1', password: legacyDeviceToken('tenant-secret-0123456789', { tenant: 'acme', device: 'dev1' }), protocolVersion: 5, clientId: 'other', reconnectPeriod: 0 })).rejects.toThrow(/authori[sz]ed/i);
    } finally {
      broker.kill('SIGKILL');
    }
  });

  it.runIf(process.getuid?.() === 0)('names the folder the broker user cannot enter', async () => {
    const closed = path.join(dir, 'closed');
    await mkdir(path.join(closed, 'inner'), { recursive: true });
    await chmod(closed, 0o700);
    expect(await blockedFolderFor(await osUser('mosquitto'), path.join(closed, 'inner', 'passwords'))).toBe(closed);
    await expect(osUser('no-such-user-arteria')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

/** Connects as soon as the broker listens (it takes a moment to start). */
async function connectWhenUp(url: string, credentials: { username: string; password: string }): Promise<MqttClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await mqtt.connectAsync(url, { ...credentials, protocolVersion: 5, clientId: 'acme.dev1', clean: true, reconnectPeriod: 0, connectTimeout: 5_000 });
    } catch (err) {
      if (attempt >= 100 || (err as Error).message.includes('Not authorized')) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

