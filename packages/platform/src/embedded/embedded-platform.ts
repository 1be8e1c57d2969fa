import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UNREADABLE_REQUEST_ID, toArteriaError, type AlgorithmRef } from '@arteria/protocol';
import { AlgorithmRegistry, buildWorkerPlane, loadArtifactTrust, onnxRuntimeModuleUrl, type WorkerPlane, type WorkerPool } from '@arteria/worker';
import { parseEmbeddedOptions, type EmbeddedPlatformOptions } from '../config.js';
import { DeviceDirectory, Lifecycle, type LifecycleState, LEDGER_KEY_FILE, REVOCATIONS_FILE, WatchedRevocations, loadOrCreateLedgerSigner, securityEventLine, type SecurityEventSink } from '@arteria/ports';
import { OpsHttpServer, buildDashboard } from '@arteria/operations';
import { DeadLetterDesk, EntitlementPolicy, RefusalLog, buildIngest } from '@arteria/ingest';
import { DataDirLock, SqliteRequestLedger, SqliteRunCheckpoints, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { PlatformMetrics, MetricHistory, securitySink, type Logger, openTracing, type Tracer } from '@arteria/telemetry';
import { EMBEDDED_S3_CREDENTIALS, LocalStoreInputSource, createS3Client, UploadGrantIssuer, EmbeddedObjectStore } from '@arteria/engine-s3';

export { EMBEDDED_S3_CREDENTIALS };
import { startEmbeddedAutoscaler } from './embedded-autoscaler.js';
import { startEmbeddedCanaryGuard } from './embedded-canaries.js';
import { type Autoscaler } from '@arteria/autoscaler';
import { EmbeddedBroker } from '@arteria/engine-mqtt';

export type PlatformState = LifecycleState;


export interface PlatformStatus {
  state: PlatformState;
  devices: { connected: number; known: number; online: number; inProcedure: number };
  /** `rejected`: admitted, then rejected by a worker (bad DICOM...); `refused`: turned away at admission, never queued. */
  requests: { accepted: number; completed: number; ok: number; rejected: number; failed: number; refused: number };
  queue: { ready: number; inFlight: number; delayed: number; deadLettered: number; oldestAgeMs: number };
  workers: { size: number; busy: number };
  algorithms: AlgorithmRef[];
}

/**
 * Arteria in one process: MQTT broker, S3-API store, SQLite queue and ledger, ingest,
 * isolated algorithm runner, worker pool and operations endpoints. Devices and workers
 * still speak MQTT and the S3 API to it, exactly as to a cluster.
 */
export class EmbeddedPlatform {
  readonly #life = new Lifecycle('embedded platform');
  readonly options: Readonly<EmbeddedPlatformOptions>;
  readonly broker = new EmbeddedBroker();
  /** Requests turned away at admission, for the dashboard. */
  readonly refusals = new RefusalLog();
  readonly objectStore = new EmbeddedObjectStore();
  readonly http = new OpsHttpServer();
  readonly devices = new DeviceDirectory();
  /** The dashboard's last hour: results and gauges per interval. */
  readonly history: MetricHistory;
  #queue!: SqliteWorkQueue;
  #ledger!: SqliteRequestLedger;
  #pool!: WorkerPool;
  #workers: WorkerPlane | undefined;
  #registry!: AlgorithmRegistry;
  #entitlements: EntitlementPolicy | undefined;
  #metrics!: PlatformMetrics;
  #autoscaler: Autoscaler | undefined;
  #errors: ((error: Error) => void) | undefined;
  #security: SecurityEventSink | undefined;
  #logger: Logger | undefined;
  /** The store's one key, made at each start: only the platform signs with it (its own reads, devices' grants). */
  readonly #storeKey = { accessKeyId: `arteria${randomBytes(6).toString('hex')}`, secretAccessKey: randomBytes(24).toString('base64url') };

  private constructor(options: Readonly<EmbeddedPlatformOptions>) {
    this.options = options;
    this.history = new MetricHistory(options.history);
  }

  /**
   * Starts every part; on failure, stops what already started and rethrows. `logger` gets
   * one line per request lifecycle event (admitted, refused, leased, computed, delivered,
   * failed, retried, dead-lettered) and, unless `onSecurityEvent` is given, the security events.
   */
  static async start(input: unknown, onError?: (error: Error) => void, onSecurityEvent?: SecurityEventSink, logger?: Logger): Promise<EmbeddedPlatform> {
    const platform = new EmbeddedPlatform(parseEmbeddedOptions(input));
    platform.#errors = onError;
    platform.#logger = logger;
    // Default: one structured line per event on stderr, where an operator's log shipper looks.
    platform.#security = onSecurityEvent ?? (logger ? securitySink(logger) : (event) => process.stderr.write(`${securityEventLine(event)}\n`));
    await platform.#life.start(() => platform.#start());
    return platform;
  }

  get state(): PlatformState {
    return this.#life.state;
  }

  get mqttUrl(): string {
    return this.broker.url;
  }

  /** The TLS MQTT listener's URL (mqtts), when `mqttTls` is set. */
  get mqttsUrl(): string | undefined {
    return this.broker.tlsUrl;
  }

  get s3Endpoint(): string {
    return this.objectStore.endpoint;
  }

  /** The object store's key, for the platform's own tools and tests in this process; never handed to devices. */
  get storeCredentials(): { accessKeyId: string; secretAccessKey: string; region: string } {
    return { ...this.#storeKey, region: EMBEDDED_S3_CREDENTIALS.region };
  }

  get metrics(): PlatformMetrics {
    return this.#metrics;
  }

  /** The controller resizing the pool, when the `autoscale` option is set. */
  get autoscaler(): Autoscaler | undefined {
    return this.#autoscaler;
  }

  get pool(): WorkerPool {
    return this.#pool;
  }

  get queue(): SqliteWorkQueue {
    return this.#queue;
  }

  get ledger(): SqliteRequestLedger {
    return this.#ledger;
  }

  /** The entitlements ingest admits with (canaries withdrawn by rollback included); undefined: every version for everyone. */
  get entitlements(): EntitlementPolicy | undefined {
    return this.#entitlements;
  }

  get registry(): AlgorithmRegistry {
    return this.#registry;
  }

  /** Segmented runs the workers hold between their steps (a finished or abandoned run is released). */
  get segmentedRunsInHand(): number {
    return this.#workers?.runsInHand() ?? 0;
  }

  async status(): Promise<PlatformStatus> {
    const [queue, requests] = await Promise.all([this.#queue.stats(), this.#ledger.counts()]);
    return {
      state: this.#life.state,
      devices: { connected: this.broker.connectedClients, ...this.devices.counts() },
      requests: { ...requests, refused: this.refusals.total },
      queue,
      workers: { size: this.#pool.size, busy: this.#pool.busy },
      algorithms: this.#registry.list().map((a) => a.ref),
    };
  }

  async #start(): Promise<void> {
    const o = this.options;
    const dataDir = path.resolve(o.dataDir);
    // Before any port is bound: a second platform on this data dir is told so, not that a port is taken.
    const lock = DataDirLock.acquire(dataDir);
    this.#life.defer('data dir lock', () => lock.release());
    await mkdir(path.join(dataDir, 'objects'), { recursive: true });
    const report = (err: unknown): void => this.#errors?.(toArteriaError(err));
    // First in, last out: spans of the tasks the workers finish while closing are still sent.
    const tracing = await openTracing({ otlpEndpoint: o.tracing?.otlpEndpoint, serviceName: 'arteria-platform', onError: report });
    this.#life.defer('tracing', () => tracing.close());
    const tracer: Tracer = tracing.tracer;

    await this.objectStore.start({ host: o.host, port: o.s3Port, directory: path.join(dataDir, 'objects'), buckets: [o.bucket], credentials: this.#storeKey });
    this.#life.defer('object store', () => this.objectStore.close());
    const storeClient = createS3Client({ endpoint: this.objectStore.endpoint, region: EMBEDDED_S3_CREDENTIALS.region, ...this.#storeKey, forcePathStyle: true });
    this.#life.defer('store client', () => Promise.resolve(storeClient.destroy()));
    const grants = new UploadGrantIssuer({ signer: storeClient, bucket: o.bucket, ttlMs: o.grantTtlMs });

    const dbPath = path.join(dataDir, 'platform.db');
    this.#queue = new SqliteWorkQueue({ path: dbPath, maxDeliveries: o.maxDeliveries, synchronous: o.queueSynchronous });
    this.#life.defer('work queue', () => this.#queue.close());
    // NORMAL: ingest records here just before the queue's durable enqueue, whose WAL sync
    // covers this write too; a result record lost to power loss only means a recompute.
    // The chain's checkpoints are signed with the platform's key, made on first start.
    const signer = await loadOrCreateLedgerSigner(path.join(dataDir, LEDGER_KEY_FILE));
    this.#ledger = new SqliteRequestLedger({ path: dbPath, synchronous: 'NORMAL', signer });
    this.#life.defer('request ledger', () => this.#ledger.close());

    this.#registry = await AlgorithmRegistry.load(o.algorithmDirs, { trust: await loadArtifactTrust(o.algorithmTrust) });
    const registry = this.#registry;

    this.#metrics = new PlatformMetrics({
      queue: () => this.#queue.stats(),
      workers: () => ({ size: this.#pool.size, busy: this.#pool.busy }),
      // Without autoscale the pool size is what was asked for.
      desiredWorkers: () => (this.#autoscaler === undefined ? this.#pool.size : this.#autoscaler.decisions.at(-1)?.target),
      devicesConnected: () => this.broker.connectedClients,
    }, this.history);

    // Results go out through the broker itself; ingest is built before the broker starts
    // and the broker starts with it.
    const results = this.broker.publisher();
    // `arteria devices revoke` writes it; the broker and ingest reread it when it changes.
    const revocations = new WatchedRevocations(path.join(dataDir, REVOCATIONS_FILE), { onError: report });
    // One policy for admission, replays and the canary guard: a withdrawal applies to all.
    const entitlements = o.entitlements === undefined ? undefined : EntitlementPolicy.parse(o.entitlements);
    this.#entitlements = entitlements;
    if (entitlements !== undefined) {
      const guard = await startEmbeddedCanaryGuard({ ledger: this.#ledger, policy: entitlements, store: storeClient, bucket: o.bucket, logger: this.#logger }, { intervalMs: o.canaryCheckIntervalMs, window: o.canaryWindow }, report);
      if (guard !== undefined) this.#life.defer('canary guard', () => guard.close());
    }
    const ingest = buildIngest(
      { queue: this.#queue, ledger: this.#ledger, algorithms: registry, results, metrics: this.#metrics, refusals: this.refusals, grants, tracer, ...(this.#logger ? { logger: this.#logger } : {}) },
      { bucket: o.bucket, entitlements, rate: o.admissionRate, grantRate: o.grantRate, replyRate: o.replyRate, maxOpenSegmentedRunsPerDevice: o.maxOpenSegmentedRunsPerDevice, revocations, allowIdentifiedInputs: o.allowIdentifiedInputs },
    );
    // Workers here share the store's disk: they read objects from it without the HTTP hop.
    // Algorithms with a model get an ONNX Runtime backend in their own threads.
    // Segmented runs (sent while acquired) keep their checkpoints beside the queue, durably.
    const checkpoints = new SqliteRunCheckpoints({ path: dbPath });
    this.#life.defer('run checkpoints', () => checkpoints.close());
    const workers = buildWorkerPlane(
      { registry, queue: this.#queue, ledger: this.#ledger, checkpoints, inputs: new LocalStoreInputSource(path.join(dataDir, 'objects')), results, metrics: this.#metrics, onError: report, tracer, ...(this.#logger ? { logger: this.#logger } : {}) },
      { threadsPerAlgorithm: o.threadsPerAlgorithm, inferenceModule: onnxRuntimeModuleUrl(), visibilityMs: o.visibilityMs, leaseWaitMs: o.leaseWaitMs, maxInputBytes: o.maxInputBytes, maxDeliveries: o.maxDeliveries, segmentedRunIdleMs: o.segmentedRunIdleMs },
      this.#life,
    );
    workers.warm(report);
    this.#pool = workers.pool;
    this.#workers = workers;

    const secrets = { tenants: new Map(Object.entries(o.tenants)), platform: o.platformSecret, revocations, acceptLegacyTokens: o.acceptLegacyTokens };
    await this.broker.start({
      host: o.host,
      port: o.mqttPort,
      secrets,
      ...(o.mqttTls === undefined ? {} : { tls: { host: o.host, ...o.mqttTls } }),
      hooks: {
        onRequest: async (topic, payload) => {
          await ingest.handle(topic, payload);
        },
        onRefused: (sender, error) => {
          ingest.reject(sender, UNREADABLE_REQUEST_ID, error).catch(report);
        },
        onStatus: (topic, payload) => {
          this.devices.record(topic, payload);
        },
        onError: report,
        onSecurityEvent: (event) => this.#security?.(event),
      },
    });
    this.#life.defer('MQTT broker', () => this.broker.close());
    this.#life.defer('worker pool', () => this.#pool.close());
    this.#pool.resize(o.workers);
    if (o.autoscale) {
      const autoscaler = await startEmbeddedAutoscaler({ queue: this.#queue, ledger: this.#ledger, metrics: this.#metrics, devices: this.devices, pool: this.#pool }, o.autoscale, report);
      this.#autoscaler = autoscaler;
      this.#life.defer('autoscaler', () => autoscaler.close());
    }

    this.history.sampleEvery(async () => {
      const q = await this.#queue.stats();
      const desired = this.#autoscaler === undefined ? this.#pool.size : this.#autoscaler.decisions.at(-1)?.target;
      return { queueReady: q.ready, inFlight: q.inFlight, workersActual: this.#pool.size, workersDesired: desired ?? null };
    }, report);
    this.#life.defer('metric history', () => Promise.resolve(this.history.stop()));
    const desk = new DeadLetterDesk({
      queues: new Map([['cpu', this.#queue]]),
      ledger: this.#ledger,
      admission: { algorithms: this.#registry, bucket: o.bucket, entitlements },
    });
    const dashboard = buildDashboard({
      devices: this.devices,
      ledger: this.#ledger,
      audit: this.#ledger.auditSource(),
      verifyRecord: signer.recordVerifier,
      history: this.history,
      desk,
      latency: () => Promise.resolve(this.history.snapshot().stages),
      refusals: this.refusals,
      replay: true,
    });
    await this.http.start({ metrics: this.#metrics.registry, status: () => this.status(), ready: () => this.#life.running, dashboard }, o.host, o.httpPort, {
      token: o.opsToken,
      onRefused: (event) => this.#security?.(event),
      ...(o.httpTls !== undefined ? { tls: o.httpTls } : {}),
    });
    this.#life.defer('ops HTTP server', () => this.http.close());
  }

  /**
   * Stops in reverse start order: HTTP, then workers drain (finishing tasks in hand and
   * publishing their results), then publisher, broker, runner, ledger, queue, store.
   * Every step runs even if one fails (CLOSE_FAILED then lists each failure). Idempotent.
   */
  close(): Promise<void> {
    return this.#life.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
