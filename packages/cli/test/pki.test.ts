import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './support/cluster.js';

const run = promisify(execFile);
const cli = (args: string[]) => run(process.execPath, [CLI, ...args]);

describe('arteria pki', { timeout: 600_000 }, () => {
  let dir: string;
  let pki: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-pki-'));
    pki = path.join(dir, 'pki');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('init writes a CA and an empty CRL, every file 0600, and refuses to overwrite a CA', async () => {
    await cli(['pki', 'init', '--dir', pki]);
    const files = await readdir(pki);
    expect(files.sort()).toEqual(['ca-key.pem', 'ca.pem', 'crl.pem', 'issued.json']);
    for (const file of files) expect((await stat(path.join(pki, file))).mode & 0o077).toBe(0);
    await expect(cli(['pki', 'init', '--dir', pki])).rejects.toMatchObject({ stderr: expect.stringContaining('already holds a certificate authority') as unknown });
  });

  it('issue writes a device certificate naming the device, signed by the CA', async () => {
    const { stdout } = await cli(['pki', 'issue', 'demo/deva', '--dir', pki]);
    const certFile = path.join(pki, 'issued', 'demo.deva.pem');
    expect(stdout).toContain(certFile);
    const cert = new X509Certificate(await readFile(certFile));
    expect(cert.subject).toBe('CN=demo/deva');
    expect(cert.subjectAltName).toBe('URI:arteria:device:demo/deva');
    expect(cert.checkIssued(new X509Certificate(await readFile(path.join(pki, 'ca.pem'))))).toBe(true);
    for (const file of [certFile, path.join(pki, 'issued', 'demo.deva-key.pem')]) expect((await stat(file)).mode & 0o077).toBe(0);
    await expect(cli(['pki', 'issue', 'Demo/../x', '--dir', pki])).rejects.toMatchObject({ stderr: expect.stringContaining('<tenant>/<device>') as unknown });
  });

  it('revoke puts the serial on the CRL and marks it in the list', async () => {
    const serial = /serial ([0-9a-f]+)/.exec((await cli(['pki', 'list', '--dir', pki])).stdout)?.[1] ?? '';
    await cli(['pki', 'revoke', 'demo/deva', '--dir', pki]);
    expect((await cli(['pki', 'list', '--dir', pki])).stdout).toMatch(/demo\/deva .* REVOKED /);
    const crl = (await run('openssl', ['crl', '-in', path.join(pki, 'crl.pem'), '-noout', '-text'])).stdout;
    expect(crl.replace(/[^0-9A-F]/gi, '').toLowerCase()).toContain(serial.replace(/^0+/, ''));
    await expect(cli(['pki', 'revoke', 'demo/deva', '--dir', pki])).rejects.toMatchObject({ stderr: expect.stringContaining('no valid certificate') as unknown });
  });

  it('broker mosquitto --pki-dir issues the broker certificate and writes a TLS listener (8883 by default)', async () => {
    const secrets = path.join(dir, 'secrets.json');
    await writeFile(secrets, JSON.stringify({ platformSecret: 'platform-secret-0123456789', tenants: { demo: 'tenant-secret-0123456789' } }), { mode: 0o600 });
    const out = path.join(dir, 'broker');
    await cli(['broker', 'mosquitto', '--out', out, '--pki-dir', pki, '--tls-host', 'mqtt.example.org', '--user', 'root', '--secrets-file', secrets, '--device', 'demo/deva']);
    const conf = await readFile(path.join(out, 'mosquitto.conf'), 'utf8');
    expect(conf).toContain('listener 8883 0.0.0.0');
    expect(conf).toContain(`cafile ${path.join(out, 'ca.pem')}`);
    expect(new X509Certificate(await readFile(path.join(out, 'server.pem'))).subjectAltName).toBe('DNS:mqtt.example.org');
    const mtls = path.join(dir, 'broker-mtls');
    await cli(['broker', 'mosquitto', '--out', mtls, '--pki-dir', pki, '--client-certificates', '--port', '9883', '--user', 'root', '--secrets-file', secrets, '--device', 'demo/deva']);
    const mtlsConf = await readFile(path.join(mtls, 'mosquitto.conf'), 'utf8');
    expect(mtlsConf).toContain(`require_certificate true\nuse_identity_as_username true\nuse_username_as_clientid true\ncrlfile ${path.join(mtls, 'crl.pem')}`);
    expect(mtlsConf).toContain('listener 9884 0.0.0.0');
    // Devices hold certificates only: the password file has the services alone.
    expect(await readFile(path.join(mtls, 'passwords'), 'utf8')).not.toContain('demo/deva');
    await expect(cli(['broker', 'mosquitto', '--out', out, '--plaintext', '--user', 'root', '--secrets-file', secrets])).rejects.toMatchObject({ stderr: expect.stringContaining('loopback') as unknown });
  });
});
