import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, freePort } from './support/cluster.js';
import { freePorts } from '@arteria/testing';

const run = promisify(execFile);
const cli = (args: string[], timeoutMs = 240_000) => run(process.execPath, [CLI, ...args], { timeout: timeoutMs });

/** Running, not merely a zombie (exited, not yet reaped by whoever inherited it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Pids of processes whose command line names `dir`. */
async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if ((await readFile(`/proc/${name}/cmdline`, 'utf8')).includes(dir)) pids.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/**
 * `arteria cluster up` as an operator runs it (docs/cluster.md): separate processes on free
 * ports in a fresh folder, a device provisioned with the CLI, a run sent through the real
 * gateway, and `cluster down` leaving nothing behind.
 */
describe('arteria cluster up, a device, a first result, down', () => {
  let dir: string;
  const ports: Record<string, number> = {};
  let upOutput = '';
  let began = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-cluster-up-'));
    // Mosquitto drops to its own user: it must reach the broker files.
    await chmod(dir, 0o755);
    for (const name of ['mqtt', 's3', 'nats', 'dashboard', 'autoscaler', 'scaler', 'worker']) ports[name] = await freePort();
    ports.ingest = await freePorts(2);
    began = performance.now();
    const args = ['cluster', 'up', '--dir', dir, '--ingests', '2', '--workers', '1', '--wait-s', '240'];
    for (const [name, port] of Object.entries(ports)) args.push(`--${name}-port`, String(port));
    upOutput = (await cli(args, 300_000)).stdout;
  }, 320_000);

  afterAll(async () => {
    if (dir === undefined) return;
    await cli(['cluster', 'down', '--dir', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }, 300_000);

  it('starts every process on its port, says what is where, and reports them ready', async () => {
    expect(upOutput).toContain('Arteria cluster is up');
    for (const name of ['mosquitto', 'nats-server', 'store', 'ingest-1', 'ingest-2', 'worker-1', 'autoscaler', 'dashboard']) expect(upOutput).toMatch(new RegExp(`${name}\\s+pid \\d+`));
    expect(upOutput).toContain(`mqtt://127.0.0.1:${ports.mqtt}`);
    expect(upOutput).toContain(`http://127.0.0.1:${ports.ingest! + 1}/readyz`);
    expect(upOutput).toContain(path.join(dir, 'cluster.json'));
    // The temp folder is open to it, so Mosquitto dropped to its own user and read its files.
    if (process.getuid?.() === 0) expect(upOutput).toContain('user mosquitto');
    const { stdout } = await cli(['cluster', 'status', '--dir', dir]);
    expect(stdout.trim().split('\n').every((line) => line.includes(' ready '))).toBe(true);
    // A second `up` in the same folder refuses instead of starting a second set.
    await expect(cli(['cluster', 'up', '--dir', dir])).rejects.toMatchObject({ stderr: expect.stringContaining('already runs') as unknown });
  }, 300_000);

  it('provisions a device whose gateway gets a result through the cluster', async () => {
    const added = (await cli(['cluster', 'device', 'add', 'demo/xa1', '--dir', dir])).stdout;
    const config = path.join(dir, 'gateways', 'demo.xa1.json');
    expect(added).toContain(config);
    expect((await stat(config)).mode & 0o077).toBe(0);
    const sample = path.join(dir, 'run.dcm');
    await cli(['gateway', 'sample', sample, '--frames', '12', '--size', '64']);
    const sent = await cli(['gateway', 'send', '--config', config, sample], 180_000);
    const firstResultS = (performance.now() - began) / 1000;
    expect(sent.stdout).toMatch(/run\.dcm <- contrast-injection@1\.\d+\.\d+ ok/);
    process.stdout.write(`fresh cluster up to first result: ${firstResultS.toFixed(1)} s\n`);
  }, 400_000);

  it('adds a tenant and rotates a token: the old token is refused, the new one admitted', async () => {
    await cli(['cluster', 'tenant', 'add', 'acme', '--dir', dir]);
    const first = (await cli(['cluster', 'device', 'add', 'acme/dev1', '--dir', dir])).stdout;
    const token = (text: string): string => /^\s+token\s+(\S+)$/m.exec(text)?.[1] ?? '';
    const oldToken = token(first);
    const rotated = (await cli(['cluster', 'device', 'rotate-token', 'acme/dev1', '--dir', dir])).stdout;
    const newToken = token(rotated);
    expect(oldToken).toMatch(/^at2\.0\.\d+\.\d+\.[\w-]{43}$/);
    expect(newToken).toMatch(/^at2\.1\.\d+\.\d+\.[\w-]{43}$/);
    expect(newToken).not.toBe(oldToken);
    const login = (password: string, clientId = 'acme.dev1') =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${ports.mqtt}`, { protocolVersion: 5, clientId, clean: true, username: 'acme/dev1', password, reconnectPeriod: 0, connectTimeout: 10_000 });
    await expect(login(oldToken)).rejects.toThrow(/authori[sz]ed|Bad User Name or Password/i);
    const client = await login(newToken);
    await client.endAsync();
    // Added while Mosquitto ran, the device is bound to its client id at once.
    await expect(login(newToken, 'demo.xa1')).rejects.toThrow(/authori[sz]ed/i);
    await expect(cli(['cluster', 'device', 'add', 'nobody/dev1', '--dir', dir])).rejects.toMatchObject({ stderr: expect.stringContaining('no tenant nobody') as unknown });
  }, 300_000);

  it('revokes one device: Mosquitto disconnects and refuses it while the tenant\'s other device logs in; reinstated, it gets a new token', async () => {
    const token = (text: string): string => /^\s+token\s+(\S+)$/m.exec(text)?.[1] ?? '';
    const login = (device: string, password: string) =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${ports.mqtt}`, { protocolVersion: 5, clientId: `acme.${device}`, clean: true, username: `acme/${device}`, password, reconnectPeriod: 0, connectTimeout: 10_000 });
    const lostToken = token((await cli(['cluster', 'device', 'add', 'acme/lost', '--dir', dir])).stdout);
    const keptToken = token((await cli(['cluster', 'device', 'add', 'acme/kept', '--dir', dir])).stdout);
    const held = await login('lost', lostToken);
    const cut = new Promise<void>((resolve) => held.once('close', () => resolve()));
    const revoked = (await cli(['cluster', 'device', 'revoke', 'acme/lost', '--reason', 'stolen', '--dir', dir])).stdout;
    expect(revoked).toMatch(/acme\/lost revoked at/);
    await cut;
    held.end(true);
    await expect(login('lost', lostToken)).rejects.toThrow(/authori[sz]ed|Bad User Name or Password/i);
    const kept = await login('kept', keptToken);
    await kept.endAsync();
    const revocations = JSON.parse(await readFile(path.join(dir, 'revoked-devices.json'), 'utf8')) as { devices: { tenant: string; device: string; reason?: string }[] };
    expect(revocations.devices).toEqual([expect.objectContaining({ tenant: 'acme', device: 'lost', reason: 'stolen' })]);
    await expect(cli(['cluster', 'device', 'rotate-token', 'acme/lost', '--dir', dir])).rejects.toMatchObject({ stderr: expect.stringContaining('DEVICE_REVOKED') as unknown });

    const reinstated = token((await cli(['cluster', 'device', 'reinstate', 'acme/lost', '--dir', dir])).stdout);
    expect(reinstated).not.toBe(lostToken);
    // The reload is asynchronous: the new password line arrives with it.
    await expect.poll(async () => login('lost', reinstated).then((c) => c.endAsync().then(() => true), () => false), { timeout: 10_000 }).toBe(true);
    await expect(login('lost', lostToken)).rejects.toThrow(/authori[sz]ed|Bad User Name or Password/i);
  }, 300_000);

  it('a role started on a taken port says only that', async () => {
    const failed = await cli(['worker', '--config', path.join(dir, 'arteria.json'), '--http-port', String(ports.dashboard)]).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr?.trim().split('\n')).toEqual([`arteria: PORT_IN_USE: port ${ports.dashboard} on 127.0.0.1 is already in use by another program; choose another with --http-port <port>`]);
  }, 300_000);

  it('a worker whose bucket is missing stops at start, naming the bucket', async () => {
    const failed = await cli(['worker', '--config', path.join(dir, 'arteria.json'), '--http-port', '0', '--s3-bucket', 'no-such-bucket']).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(78); // a configuration error: restarting would not help
    expect(failed?.stderr).toContain(`CONFIG_INVALID: bucket no-such-bucket does not exist at http://127.0.0.1:${ports.s3}`);
  }, 300_000);

  it('cluster down stops every process it started and leaves none behind', async () => {
    const state = JSON.parse(await readFile(path.join(dir, 'cluster.json'), 'utf8')) as { processes: { pid: number }[] };
    expect(state.processes).toHaveLength(8);
    const { stdout } = await cli(['cluster', 'down', '--dir', dir], 180_000);
    expect(stdout).toContain('stopped 8 processes');
    expect(state.processes.filter(({ pid }) => alive(pid))).toEqual([]);
    expect(await processesIn(dir)).toEqual([]);
    await expect(cli(['cluster', 'status', '--dir', dir])).rejects.toMatchObject({ code: 1 });
  }, 400_000);
});
