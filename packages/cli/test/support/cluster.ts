import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { legacyDeviceToken } from '@arteria/protocol';
import { TestDevice, fixtureAlgorithm, freePort, waitForPort } from '@arteria/testing';
export { freePort, waitForPort };

export const CLI = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const NAP_DIR = fixtureAlgorithm('nap');

/** The operator token the role processes of these tests are started with (http.token). */
export const OPS_TOKEN = 'test-operator-token-0123456789';
export const opsAuth = { headers: { authorization: `Bearer ${OPS_TOKEN}` } };

/** A process started with the real CLI, with its readiness URL and its output kept for failures. */
export class RoleProcess {
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  url = '';

  private constructor(readonly child: ChildProcess, readonly name: string) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(args: string[], name: string, env: Record<string, string> = {}): Promise<RoleProcess> {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ARTERIA_HTTP_TOKEN: OPS_TOKEN, ...process.env, ...env } });
    const role = new RoleProcess(child, name);
    child.stderr?.on('data', (chunk: Buffer) => role.output.push(chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        role.output.push(text);
        const match = /ready (http:\/\/\S+)/.exec(text);
        if (match?.[1] !== undefined) {
          role.url = match[1];
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code ?? 'signal'} before it was ready:\n${role.output.join('')}`)));
    });
    return role;
  }

  /** The last lines this process wrote (its log): what a failure message should carry. */
  tail(lines = 40): string {
    return this.output.join('').split('\n').slice(-lines).join('\n');
  }

  async status<T = Record<string, unknown>>(): Promise<T> {
    const res = await fetch(`${this.url}/api/status`, opsAuth);
    return (await res.json()) as T;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** A device that speaks MQTT 5 to the cluster broker with its own credentials. */
export const ClusterDevice = {
  /** The token is the one `arteria broker mosquitto --device` writes into the password file (no expiry). */
  connect: (url: string, secret: string, tenant: string, device: string): Promise<TestDevice> =>
    TestDevice.connect(url, secret, tenant, device, { protocolVersion: 5, token: legacyDeviceToken(secret, { tenant, device }) }),
};
export type ClusterDevice = TestDevice;

/** Runs `step`; when it fails, the error carries the named processes' recent logs (reconnects, refusals, retries say why). */
export async function withLogsOf<T>(roles: readonly RoleProcess[], step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof Error) err.message += roles.map((r) => `\n--- ${r.name}, last lines ---\n${r.tail()}`).join('');
    throw err;
  }
}

/** Polls until `check` returns a value other than undefined. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A private nats-server with JetStream (file store in `dir`) on a free loopback port. */
export async function startNatsServer(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const conf = `${dir}/nats.conf`;
  await writeFile(conf, [`listen: 127.0.0.1:${port}`, `server_name: arteria_cluster_${port}`, 'jetstream {', `  store_dir: "${dir}/nats"`, '}', ''].join('\n'));
  const child = spawn('/usr/sbin/nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitForPort(port);
  return { url: `nats://127.0.0.1:${port}`, child };
}

/**
 * Writes `dir`/arteria.yaml for roles of a single-machine cluster: data in `dir`, the
 * broker at `mqttPort`, the SQLite queue, an ops port the OS picks, the KEDA autoscaler
 * with `autoscale` (YAML flow fields), secrets from `secretsFile`. Returns its path.
 */
export async function writeKedaClusterConfig(dir: string, mqttPort: number, autoscale: string, secretsFile: string): Promise<string> {
  const configFile = path.join(dir, 'arteria.yaml');
  await writeFile(
    configFile,
    [
      `dataDir: ${dir}`,
      `mqtt: { url: "mqtt://127.0.0.1:${mqttPort}", keepaliveS: 5 }`,
      'queue: { kind: sqlite }',
      'http: { port: 0 }',
      `autoscale: { target: keda, ${autoscale} }`,
      `secrets: { file: "${secretsFile}" }`,
      '',
    ].join('\n'),
  );
  return configFile;
}
