import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceTopic, encodePayload, epochNow } from '@arteria/protocol';
import type { AutoscalerRoleStatus } from '@arteria/platform';
import { CLI, ClusterDevice, RoleProcess, freePort, until, waitForPort, writeKedaClusterConfig } from './support/cluster.js';

const run = promisify(execFile);
const TENANT_SECRET = 'nobroker-tenant-secret-0123456789';
const PLATFORM_SECRET = 'nobroker-platform-secret-0123456789';

/**
 * Device status is an optional signal to the autoscaler: with no broker listening it must
 * start, serve and decide from the queue and ledger; once a broker answers on the
 * configured URL it must pick device status up without a restart.
 */
describe('autoscaler without a broker', () => {
  let dir: string;
  let mqttPort: number;
  let autoscaler: RoleProcess;
  let mosquitto: ChildProcess | undefined;
  let device: ClusterDevice | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-nobroker-'));
    // Mosquitto drops to its own user: let it reach the files below.
    await chmod(dir, 0o755);
    const secretsFile = path.join(dir, 'secrets.json');
    await writeFile(secretsFile, JSON.stringify({ platformSecret: PLATFORM_SECRET, tenants: { acme: TENANT_SECRET } }), { mode: 0o600 });
    mqttPort = await freePort();
    const configFile = await writeKedaClusterConfig(dir, mqttPort, `grpcPort: ${await freePort()}, intervalMs: 200`, secretsFile);
    autoscaler = await RoleProcess.start(['autoscaler', '--config', configFile], 'autoscaler');
  }, 60_000);

  afterAll(async () => {
    await device?.close();
    await autoscaler?.stop();
    mosquitto?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('starts, is ready and decides while nothing listens on the broker URL, and says so once', async () => {
    expect((await fetch(`${autoscaler.url}/readyz`)).status).toBe(200);
    const status = await until(async () => {
      const s = await autoscaler.status<AutoscalerRoleStatus>();
      return s.workers === undefined ? undefined : s;
    }, 'a first decision');
    expect(status).toMatchObject({ state: 'running', statusConnected: false, workers: 1 });
    await until(() => Promise.resolve(autoscaler.output.join('').includes('not reachable') ? true : undefined), 'the outage line');
    // Several retries have passed by now; the outage is logged once, not once per retry.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(autoscaler.output.join('').match(/not reachable/g)).toHaveLength(1);
  });

  it('uses device status once a broker answers, without a restart', async () => {
    const brokerDir = path.join(dir, 'broker');
    // Default user: as root the password file goes to the mosquitto user Mosquitto drops to.
    await run(process.execPath, [CLI, 'broker', 'mosquitto', '--plaintext', '--out', brokerDir, '--port', String(mqttPort), '--host', '127.0.0.1', '--secrets-file', path.join(dir, 'secrets.json'), '--device', 'acme/dev1', ...(process.getuid?.() === 0 ? [] : ['--user', process.env.USER ?? 'root'])]);
    mosquitto = spawn('/usr/sbin/mosquitto', ['-c', path.join(brokerDir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForPort(mqttPort);
    await until(async () => ((await autoscaler.status<AutoscalerRoleStatus>()).statusConnected ? true : undefined), 'the autoscaler to reach the broker');
    const connected = await ClusterDevice.connect(`mqtt://127.0.0.1:${mqttPort}`, TENANT_SECRET, 'acme', 'dev1');
    device = connected;
    await connected.client.publishAsync(deviceTopic(connected, 'status'), encodePayload({ v: 1, state: 'online', at: epochNow(), inProcedure: true }), { qos: 1 });
    await until(async () => ((await autoscaler.status<AutoscalerRoleStatus>()).devices.inProcedure === 1 ? true : undefined), 'the autoscaler to see the device in a procedure');
    expect(autoscaler.output.join('')).toContain(`device status: connected to mqtt://127.0.0.1:${mqttPort}`);
  });
});
