import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Aedes } from 'aedes';
import { deviceToken } from '@arteria/protocol';
import { synthesizeXaRun } from '@arteria/dicom';
import { freePort, waitForPort } from '../ports.js';
import { startEmbeddedStore } from '../servers/embedded.js';

// What a gateway is tested against: an MQTT broker and the object store on loopback ports,
// and a Responder playing the platform (gateway and gateway-site tests share them).
export const BUCKET = 'arteria-runs';
export const TENANT = 'acme';
/** The tenant's provisioning secret: device tokens derive from it. */
export const TENANT_SECRET = 'test-tenant-secret';

/** The brokers the gateway is tested on: aedes (embedded, MQTT 3.1.1 only) and Mosquitto (MQTT 5). */
export type BrokerKind = 'aedes' | 'mosquitto';

export interface Servers {
  mqttUrl: string;
  /** The MQTT version the broker speaks at most: 4 (3.1.1, the default) or 5. */
  mqttVersion?: 4 | 5;
  s3Endpoint: string;
  /** For the test's own look at object storage. */
  s3: S3Client;
  directory: string;
  /** Where the object store keeps its files (a bucket is a folder of it). */
  storeDir: string;
  close(): Promise<void>;
}

export interface Broker {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** An embedded MQTT broker (aedes, in-memory sessions) on a loopback port; 0 lets the OS choose. */
export async function startBroker(port = 0): Promise<Broker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A real Mosquitto on `port` (anonymous, sessions in memory: these tests are about the gateway, not credentials). */
export async function startAnonymousMosquitto(dir: string, port: number): Promise<ChildProcess> {
  const conf = join(dir, `mosquitto-${port}.conf`);
  await writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  const output: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = once(child, 'exit').then(() => 'exited' as const);
  const outcome = await Promise.race([waitForPort(port).then(() => 'listening' as const), exited]);
  if (outcome === 'exited') throw new Error(`mosquitto exited before it listened:\n${output.join('')}`);
  return child;
}

export async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

async function startMosquittoBroker(directory: string): Promise<Broker> {
  const port = await freePort();
  const child = await startAnonymousMosquitto(directory, port);
  return { url: `mqtt://127.0.0.1:${port}`, port, close: () => stopProcess(child) };
}

/** An MQTT broker (embedded aedes by default, or a real Mosquitto) and S3 store (s3rver), on loopback ports. */
export async function startServers(kind: BrokerKind = 'aedes'): Promise<Servers> {
  const directory = await mkdtemp(join(tmpdir(), 'arteria-gateway-'));
  const broker = kind === 'aedes' ? await startBroker() : await startMosquittoBroker(directory);
  // The platform's embedded store (the test kit's): s3rver with the multipart operations resumable uploads need.
  const store = await startEmbeddedStore([BUCKET]);
  return {
    mqttUrl: broker.url,
    mqttVersion: kind === 'aedes' ? 4 : 5,
    s3Endpoint: store.store.endpoint,
    s3: store.s3,
    directory,
    storeDir: store.dir,
    async close() {
      await broker.close();
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A gateway logger (GatewayLogger's shape) that keeps its lines for assertions instead of printing them. */
export function memoryLogger(): MemoryLogger {
  const lines: MemoryLogger['lines'] = [];
  return {
    lines,
    info: (message, fields) => lines.push({ level: 'info', message, fields }),
    warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
    error: (message, fields) => lines.push({ level: 'error', message, fields }),
  };
}

type Log = (message: string, fields?: Record<string, unknown>) => void;
export interface MemoryLogger {
  lines: { level: string; message: string; fields?: Record<string, unknown> }[];
  info: Log;
  warn: Log;
  error: Log;
}

/**
 * A gateway's connection to `servers` as device `device` of the test tenant: the options
 * every gateway test starts from (each package's `gatewayOptions` adds its overrides, typed).
 */
export function gatewayConnection(servers: Pick<Servers, 'mqttUrl' | 's3Endpoint' | 'directory'>, device: string) {
  return {
    tenant: TENANT,
    device,
    token: deviceToken(TENANT_SECRET, { tenant: TENANT, device }),
    mqttUrl: servers.mqttUrl,
    s3: { endpoint: servers.s3Endpoint, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    outboxPath: join(servers.directory, device, 'outbox.sqlite'),
    algorithm: 'contrast-injection@^1',
    resendIntervalMs: 5_000,
    // These tests follow the exact bytes through the outbox; de-identification has its own tests.
    deidentification: { enabled: false },
  };
}

export async function objectBytes(s3: S3Client, uri: string): Promise<Buffer> {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new Error(`not an s3 uri: ${uri}`);
  const response = await s3.send(new GetObjectCommand({ Bucket: match[1], Key: match[2] }));
  if (response.Body === undefined) throw new Error(`no body for ${uri}`);
  return Buffer.from(await response.Body.transformToByteArray());
}

export async function listKeys(s3: S3Client, prefix: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Contents ?? []).map((object) => object.Key ?? '');
}

/** A small synthetic multi-frame XA run; distinct seeds give distinct instance UIDs. */
export const smallRun = (seed: number): Buffer =>
  synthesizeXaRun({ seed, rows: 64, columns: 64, frames: 8, frameRateHz: 15, bitsStored: 8, contrast: null }).bytes;

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

