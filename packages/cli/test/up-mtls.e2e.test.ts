import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, issueCertificate } from '@arteria/engine-mqtt';
import { deviceClientId, deviceUsername } from '@arteria/protocol';
import { attempt } from '@arteria/testing';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const run = promisify(execFile);
const DEVICE = { tenant: 'demo', device: 'xa1' };

/** Starts `arteria up` and resolves once it printed its listeners. */
async function startUp(args: string[]): Promise<{ child: ChildProcess; output: () => string; line: string }> {
  const child = spawn(process.execPath, [CLI, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`arteria up did not come up:\n${out}`)), 60_000);
    const check = (): void => {
      const found = /Arteria is up:[^\n]*/.exec(out)?.[0];
      if (found === undefined) return;
      clearTimeout(timer);
      resolve(found);
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => reject(new Error(`arteria up exited (${String(code)}):\n${out}`)));
  });
  return { child, output: () => out, line };
}

describe('arteria up with the embedded broker\'s mTLS listener', () => {
  let dir: string;
  let up: Awaited<ReturnType<typeof startUp>>;
  let ca: Buffer;
  let device: { cert: Buffer; key: Buffer };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-up-mtls-'));
    const pki = await initPki(path.join(dir, 'pki'));
    const issued = await issueCertificate(pki.dir, { kind: 'device', ...DEVICE });
    ca = await readFile(pki.caCert);
    device = { cert: await readFile(issued.cert), key: await readFile(issued.key) };
    const common = ['--data-dir', path.join(dir, 'data'), '--mqtt-port', '0', '--s3-port', '0', '--http-port', '0', '--devices', '0', '--duration-s', '120'];
    up = await startUp([...common, '--pki-dir', pki.dir, '--require-client-certs', '--mqtts-port', '0']);
  }, 90_000);
  afterAll(async () => {
    if (up?.child.exitCode === null) {
      const exited = new Promise((resolve) => up.child.once('exit', resolve));
      up.child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('admits a device by its certificate on the TLS listener and refuses one that shows only a token there', async () => {
    expect(up.line).toMatch(/MQTTS mqtts:\/\/127\.0\.0\.1:\d+ \(client certificates required\)/);
    const url = /MQTTS (mqtts:\/\/[^ ]+)/.exec(up.line)?.[1] ?? '';
    const byCert = await attempt(url, { clientId: deviceClientId(DEVICE), clean: true, ca, ...device });
    expect(byCert.connected).toBe(true);
    if (byCert.connected) await byCert.client.endAsync();

    const { stdout: token } = await run(process.execPath, [CLI, 'devices', 'token', `${DEVICE.tenant}/${DEVICE.device}`, '--data-dir', path.join(dir, 'data')]);
    const byToken = await attempt(url, { clientId: deviceClientId(DEVICE), clean: true, ca, username: deviceUsername(DEVICE), password: token.trim() });
    expect(byToken.connected).toBe(false);
    await expect.poll(() => up.output(), { timeout: 20_000 }).toMatch(/"event":"login_refused"[^\n]*"reason":"no client certificate"/);

    // The plaintext listener still takes the same token (it is for loopback development).
    const plain = /MQTT (mqtt:\/\/[^ ]+)/.exec(up.line)?.[1] ?? '';
    const byTokenPlain = await attempt(plain, { clientId: deviceClientId(DEVICE), clean: true, username: deviceUsername(DEVICE), password: token.trim() });
    expect(byTokenPlain.connected).toBe(true);
    if (byTokenPlain.connected) await byTokenPlain.client.endAsync();
  });

  it('refuses --require-client-certs without a CA', async () => {
    await expect(run(process.execPath, [CLI, 'up', '--data-dir', path.join(dir, 'other'), '--require-client-certs', '--devices', '0'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--pki-dir/) as unknown });
  });
});
