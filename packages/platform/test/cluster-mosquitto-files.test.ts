import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerServiceUsername, mosquittoPasswordHash, writeMosquittoFiles } from '@arteria/platform';

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

  it('writes a config with no-delay and no anonymous access, the ACL by %u, and one account per device and service', async () => {
    const files = await writeMosquittoFiles({
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
    expect(conf).toContain('allow_anonymous false');
    expect(conf).toContain('password_file /mosquitto/config/passwords');
    expect(conf).toContain('persistence_location /mosquitto/data/');
    expect(await readFile(files.acl, 'utf8')).toContain('pattern write arteria/v1/%u/requests');
    const accounts = (await readFile(files.passwords, 'utf8')).trim().split('\n').map((l) => l.slice(0, l.lastIndexOf(':')));
    expect(accounts).toEqual([brokerServiceUsername('ingest'), brokerServiceUsername('worker'), brokerServiceUsername('dashboard'), 'acme/dev1']);
    expect((await stat(files.passwords)).mode & 0o077).toBe(0);
  });

  it('refuses a device of a tenant it has no secret for', async () => {
    await expect(
      writeMosquittoFiles({ dir: path.join(dir, 'bad'), host: '127.0.0.1', port: 1883, persistenceDir: path.join(dir, 'bad', 'data'), user: 'root', platformSecret: 'platform-secret-0123456789', tenants: new Map(), devices: [{ tenant: 'other', device: 'dev1' }] }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
