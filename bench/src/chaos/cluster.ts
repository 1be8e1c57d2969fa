import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { EMBEDDED_S3_CREDENTIALS } from '@arteria/platform';
import { EmbeddedObjectStore } from '@arteria/engine-s3';
import { NatsRequestLedger } from '@arteria/engine-nats';
import { DeviceSet } from './devices.js';
import { FaultProxy, fixtureAlgorithm } from '@arteria/testing';
import { startMosquitto } from './mosquitto.js';
import { startNats } from './nats.js';
import { until } from './net.js';
import { RoleProcess, type KillRecord } from './role-process.js';
import type { ServerProcess } from './server-process.js';

const NAP_DIR = fixtureAlgorithm('nap');
const TENANT = 'acme';
const TENANT_SECRET = 'chaos-tenant-secret-0123456789';
const PLATFORM_SECRET = 'chaos-platform-secret-0123456789';
const BUCKET = 'arteria-runs';

/** A request's result as the ledger holds it (all undefined: no result recorded). */
export interface LedgerFacts {
  recordHash: string | undefined;
  completedAt: number | undefined;
  publishedAt: number | undefined;
}

export interface ChaosClusterOptions {
  ingests: number;
  workers: number;
  devices: number;
  /** The simulated devices' resend interval (the gateway's resendIntervalMs). */
  resendMs: number;
  /** A task unacknowledged this long goes to another worker. */
  visibilityMs?: number;
  workerConcurrency?: number;
  /** The ingest's MQTT session expiry (0: clean sessions, the default design). */
  sessionExpiryS?: number;
  /** Device ids for real gateways a row runs (broker accounts only; no simulated device). */
  gatewayDevices?: readonly string[];
}

/**
 * Arteria as an operator runs it on one machine, each part its own process: Mosquitto
 * with persistence, nats-server with JetStream (queue and ledger), an S3-API store, N
 * ingest and M worker processes of the real CLI, and simulated devices that reach the
 * broker through a fault proxy (the network between hospital and platform).
 */
export class ChaosCluster {
  readonly ingests: RoleProcess[] = [];
  readonly workers: RoleProcess[] = [];
  devices!: DeviceSet;
  mosquitto!: ServerProcess & { url: string; aclFile: string };
  nats!: ServerProcess & { url: string };
  proxy!: FaultProxy;
  /** Between the ingest processes and the broker. */
  ingestProxy!: FaultProxy;
  /** Between everyone (devices' uploads, workers' reads) and the object store. */
  storeProxy!: FaultProxy;
  readonly #store = new EmbeddedObjectStore();
  #s3: S3Client | undefined;

  private constructor(
    readonly dir: string,
    readonly options: ChaosClusterOptions,
  ) {}

  get tallyFile(): string {
    return path.join(this.dir, 'tally.txt');
  }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const cluster = new ChaosCluster(await mkdtemp(path.join(tmpdir(), 'arteria-chaos-')), options);
    try {
      await cluster.#start();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  async #start(): Promise<void> {
    const o = this.options;
    const deviceIds = Array.from({ length: o.devices }, (_, i) => `dev${i + 1}`);
    this.mosquitto = await startMosquitto({ dir: this.dir, platformSecret: PLATFORM_SECRET, tenants: new Map([[TENANT, TENANT_SECRET]]), devices: [...deviceIds, ...(o.gatewayDevices ?? [])].map((device) => ({ tenant: TENANT, device })) });
    this.nats = await startNats(this.dir);
    this.proxy = await FaultProxy.start(this.mosquitto.port);
    this.ingestProxy = await FaultProxy.start(this.mosquitto.port);
    await this.#store.start({ host: '127.0.0.1', port: 0, directory: path.join(this.dir, 'objects'), buckets: [BUCKET] });
    this.storeProxy = await FaultProxy.start(Number(new URL(this.#store.endpoint).port));
    // Uploads wait out a store outage as a gateway's outbox does: retried, not dropped.
    this.#s3 = new S3Client({ ...s3Settings(this.storeEndpoint), maxAttempts: 60 });
    const secretsFile = path.join(this.dir, 'secrets.json');
    await writeFile(secretsFile, JSON.stringify({ platformSecret: PLATFORM_SECRET, tenants: { [TENANT]: TENANT_SECRET } }), { mode: 0o600 });
    const configFile = path.join(this.dir, 'arteria.yaml');
    await writeFile(
      configFile,
      [
        `dataDir: ${this.dir}`,
        `mqtt: { url: "mqtt://127.0.0.1:${this.ingestProxy.port}", keepaliveS: 5, sessionExpiryS: ${o.sessionExpiryS ?? 0}, selfCheckIntervalMs: 1000, selfCheckTimeoutMs: 2000 }`,
        `s3: { endpoint: "${this.storeEndpoint}", accessKeyId: S3RVER, secretAccessKey: S3RVER, bucket: ${BUCKET} }`,
        `queue: { kind: nats, natsServers: "${this.nats.url}", maxDeliveries: 10 }`,
        'ledger: { kind: nats }',
        'http: { port: 0 }',
        `worker: { concurrency: ${o.workerConcurrency ?? 2}, visibilityMs: ${o.visibilityMs ?? 5_000}, leaseWaitMs: 200, threadsPerAlgorithm: 1, drainTimeoutMs: 15000 }`,
        `algorithms: { bundled: false, dirs: ["${NAP_DIR}"] }`,
        `secrets: { file: "${secretsFile}" }`,
        '',
      ].join('\n'),
    );
    for (let i = 0; i < o.ingests; i++) this.ingests.push(new RoleProcess('ingest', `ingest-${i}`, configFile));
    for (let i = 0; i < o.workers; i++) this.workers.push(new RoleProcess('worker', `worker-${i}`, configFile, { CHAOS_TALLY_FILE: this.tallyFile }));
    await Promise.all([...this.ingests, ...this.workers].map((r) => r.start()));
    this.devices = await DeviceSet.connect({
      url: `mqtt://127.0.0.1:${this.proxy.port}`,
      tenant: TENANT,
      tenantSecret: TENANT_SECRET,
      devices: deviceIds,
      s3: this.#s3,
      bucket: BUCKET,
      algorithm: 'nap@^1',
      resendMs: o.resendMs,
    });
  }

  /** The object store's S3 endpoint as every client reaches it (through `storeProxy`). */
  get storeEndpoint(): string {
    return `http://127.0.0.1:${this.storeProxy.port}`;
  }

  get tenant(): string {
    return TENANT;
  }

  get tenantSecret(): string {
    return TENANT_SECRET;
  }

  get bucket(): string {
    return BUCKET;
  }

  /** How often each run was computed (the nap fixture notes every computation). */
  async computations(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let text = '';
    try {
      text = await readFile(this.tallyFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) if (line !== '') counts.set(line, (counts.get(line) ?? 0) + 1);
    return counts;
  }

  /** The record digest the ledger holds for each request (undefined: no result recorded). */
  async ledgerDigests(ids: readonly string[]): Promise<Map<string, string | undefined>> {
    const entries = await this.ledgerEntries(ids);
    return new Map(ids.map((id) => [id, entries.get(id)?.recordHash]));
  }

  /** What the ledger holds of each request's result: its digest, when it was recorded and when noted as published. */
  async ledgerEntries(ids: readonly string[]): Promise<Map<string, LedgerFacts>> {
    const ledger = await NatsRequestLedger.open({ servers: [this.nats.url], stream: 'ARTERIA_LEDGER', connectionName: 'arteria-chaos-check' });
    try {
      const facts = new Map<string, LedgerFacts>();
      for (const id of ids) {
        const entry = await ledger.get(id);
        facts.set(id, { recordHash: entry?.result?.recordHash, completedAt: entry?.completedAt, publishedAt: entry?.publishedAt });
      }
      return facts;
    } finally {
      await ledger.close();
    }
  }

  /** Every SIGKILL sent to an ingest or worker process since `since` (epoch ms). */
  killsSince(since: number): KillRecord[] {
    return [...this.ingests, ...this.workers].flatMap((r) => r.kills.filter((k) => k.sentAt >= since));
  }

  /**
   * Waits until each of these requests the ledger holds has its result published (noted in
   * the ledger); a request that has not reached the platform yet is not waited for.
   */
  async awaitPublished(ids: readonly string[], timeoutMs: number): Promise<void> {
    const ledger = await NatsRequestLedger.open({ servers: [this.nats.url], stream: 'ARTERIA_LEDGER', connectionName: 'arteria-chaos-check' });
    try {
      await until(
        async () => ((await Promise.all(ids.map((id) => ledger.get(id)))).every((e) => e === undefined || e.publishedAt !== undefined) ? true : undefined),
        'the results published',
        timeoutMs,
        250,
      );
    } finally {
      await ledger.close();
    }
  }

  /** Whether every ingest answers /readyz 200. */
  async ingestsReady(): Promise<boolean> {
    const ready = await Promise.all(this.ingests.filter((r) => r.running).map((r) => r.ready()));
    return ready.every(Boolean);
  }

  async close(): Promise<void> {
    await this.devices?.close().catch(() => undefined);
    await Promise.all([...this.ingests, ...this.workers].map((r) => r.kill('SIGKILL')));
    await this.proxy?.close();
    await this.ingestProxy?.close();
    await this.storeProxy?.close();
    await this.mosquitto?.kill('SIGKILL');
    await this.nats?.kill('SIGKILL');
    this.#s3?.destroy();
    await this.#store.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The S3 client settings of the embedded store's credentials (path-style, as s3rver needs). */
function s3Settings(endpoint: string): ConstructorParameters<typeof S3Client>[0] & object {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId, secretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}
