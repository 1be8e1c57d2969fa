import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import mqtt, { type MqttClient } from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { ResultV1, decodePayload, deviceToken, deviceTopic, deviceUsername, encodePayload, epochNow, requestId, type RequestV1 } from '@arteria/protocol';
import { freePort, waitForPort } from '@arteria/testkit';
export { freePort, waitForPort };

export const CLI = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const NAP_DIR = fileURLToPath(new URL('../fixtures/algorithms/nap', import.meta.url));

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
export class ClusterDevice {
  readonly results: ResultV1[] = [];

  private constructor(readonly client: MqttClient, readonly tenant: string, readonly device: string) {
    client.on('message', (_topic, payload) => this.results.push(decodePayload(ResultV1, payload)));
  }

  static async connect(url: string, secret: string, tenant: string, device: string): Promise<ClusterDevice> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      clientId: `${tenant}.${device}`,
      username: deviceUsername({ tenant, device }),
      password: deviceToken(secret, { tenant, device }),
      clean: true,
      reconnectPeriod: 0,
    });
    const d = new ClusterDevice(client, tenant, device);
    await client.subscribeAsync(deviceTopic({ tenant, device }, 'results'), { qos: 1 });
    return d;
  }

  /** Uploads a synthetic run of `frames` frames and publishes its request. */
  async send(s3: S3Client, bucket: string, algorithm: string, frames: number, seed: number): Promise<RequestV1> {
    const { bytes } = synthesizeXaRun({ seed, rows: 32, columns: 32, frames, bitsStored: 8 });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const instanceUid = `1.2.826.0.1.3680043.10.7.${seed}`;
    const key = `${this.tenant}/${this.device}/${instanceUid}/${sha256}.dcm`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const now = epochNow();
    const request: RequestV1 = {
      v: 1,
      id: requestId({ tenant: this.tenant, device: this.device, instanceUid, sha256, algorithm, inputUris: [`s3://${bucket}/${key}`] }),
      tenant: this.tenant,
      device: this.device,
      algorithm,
      instanceUid,
      inputs: [{ uri: `s3://${bucket}/${key}`, size: bytes.byteLength, sha256, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { acquired: now, uploaded: now, published: now },
    };
    await this.client.publishAsync(deviceTopic(this, 'requests'), encodePayload(request), { qos: 1 });
    return request;
  }

  /** Publishes again the requests that have no result yet, as a gateway's resend does. */
  async resendUnanswered(requests: readonly RequestV1[]): Promise<number> {
    const unanswered = requests.filter((r) => !this.results.some((res) => res.requestId === r.id));
    for (const request of unanswered) await this.client.publishAsync(deviceTopic(this, 'requests'), encodePayload(request), { qos: 1 });
    return unanswered.length;
  }

  /** Resolves once a result has arrived for every id. */
  async waitFor(ids: readonly string[], timeoutMs = 25_000): Promise<ResultV1[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = ids.map((id) => this.results.find((r) => r.requestId === id));
      if (found.every((r) => r !== undefined)) return found;
      if (Date.now() > until) throw new Error(`results missing for ${ids.filter((_, i) => found[i] === undefined).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync();
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
