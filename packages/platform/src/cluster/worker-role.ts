import { toArteriaError, type ResultV1 } from '@arteria/protocol';
import { LiveRegistry, ShadowRunner, WorkerPool, buildWorkerPlane, inferenceModuleUrl } from '@arteria/worker';
import { PlatformMetrics, openTracing, type Logger } from '@arteria/telemetry';
import { MqttResultPublisher, brokerServiceCredentials, loadMqttTls } from '@arteria/engine-mqtt';
import { type ResultPublisher, type WorkerPoolName, within } from '@arteria/ports';
import { assertBucketExists, createS3Client, s3InputSource, s3ObjectBucket } from '@arteria/engine-s3';
import type { ClusterConfig } from './cluster-config.js';
import { artifactStoreClient, loadRoleAlgorithms } from './role-algorithms.js';
import { AlgorithmStoreWatch } from './algorithm-watch.js';
import { RoleLifecycle, type RoleState } from './role-lifecycle.js';
import { openRunCheckpoints, openSharedStores, openWorkerRoster, workerPools, type QueueFactory } from './stores.js';
import { WorkerHeartbeatWriter } from './roster-writers.js';

export interface RoleDeps {
  platformSecret: string;
  /** Every algorithm folder to load (bundled ones included by the caller). */
  algorithmDirs: string[];
  onError?: (error: Error) => void;
  /** The process's logger (request lifecycle, connection events, security events); none: nothing is logged. */
  logger?: Logger;
  queueFactories?: Partial<Record<ClusterConfig['queue']['kind'], QueueFactory>>;
}

export interface WorkerRoleStatus {
  role: 'worker';
  instanceId: string;
  state: RoleState;
  /** The pool whose queue this process leases from. */
  pool: WorkerPoolName;
  concurrency: number;
  busy: number;
  /** Results this process published since it started. */
  processed: number;
  /** The algorithm versions it runs now (`name@version`), after any change read from the store. */
  algorithms: string[];
}

/** `name@version` of every version a registry holds. */
export const versionsOf = (registry: { list(): { manifest: { name: string; version: string } }[] }): string[] => registry.list().map((a) => `${a.manifest.name}@${a.manifest.version}`);

/**
 * `arteria worker`: leases tasks from the shared queue and runs them with `concurrency`
 * workers. SIGTERM drains: readiness goes down, no new leases, tasks in hand finish and
 * publish, then the process exits; tasks still running after `drainTimeoutMs` are left
 * to their visibility timeout and another worker.
 */
export class WorkerRole {
  readonly #life = new RoleLifecycle<boolean>();
  readonly http = this.#life.http;
  readonly config: Readonly<ClusterConfig>;
  #pool: WorkerPool | undefined;
  #registry: LiveRegistry | undefined;
  #processed = 0;
  #heartbeat: WorkerHeartbeatWriter | undefined;

  private constructor(config: Readonly<ClusterConfig>) {
    this.config = config;
  }

  static async start(config: Readonly<ClusterConfig>, deps: RoleDeps): Promise<WorkerRole> {
    const role = new WorkerRole(config);
    await role.#life.start(() => role.#start(deps));
    return role;
  }

  get state(): RoleState {
    return this.#life.state;
  }

  status(): WorkerRoleStatus {
    return { role: 'worker', instanceId: this.config.instanceId, state: this.#life.state, pool: this.config.worker.pool, concurrency: this.config.worker.concurrency, busy: this.#pool?.busy ?? 0, processed: this.#processed, algorithms: this.#registry === undefined ? [] : versionsOf(this.#registry) };
  }

  async #start(deps: RoleDeps): Promise<void> {
    const c = this.config;
    const report = (err: unknown): void => deps.onError?.(toArteriaError(err));
    const stores = await openSharedStores(c, deps.queueFactories, workerPools(c));
    this.#life.defer(() => stores.close());
    const loaded = await loadRoleAlgorithms(c, 'worker', deps.algorithmDirs);
    const registry = new LiveRegistry(loaded.registry);
    this.#registry = registry;

    const publisher = await MqttResultPublisher.connect({
      url: c.mqtt.url,
      tls: await loadMqttTls(c.mqtt),
      serviceName: 'worker',
      platformSecret: deps.platformSecret,
      credentials: brokerServiceCredentials(deps.platformSecret, 'worker'),
    });
    this.#life.defer(() => publisher.close());
    const results: ResultPublisher = {
      publish: async (result: ResultV1) => {
        await publisher.publish(result);
        this.#processed += 1;
      },
      // Partial results of segmented runs go to the device like results.
      publishPartial: (partial) => publisher.publishPartial(partial),
      close: () => publisher.close(),
    };
    const storage = createS3Client({
      ...(c.s3.endpoint === '' ? {} : { endpoint: c.s3.endpoint }),
      region: c.s3.region,
      accessKeyId: c.s3.accessKeyId,
      secretAccessKey: c.s3.secretAccessKey,
      forcePathStyle: c.s3.forcePathStyle,
    });
    this.#life.defer(() => Promise.resolve(storage.destroy()));
    await assertBucketExists(storage, c.s3.bucket, c.s3.endpoint);
    const metrics = new PlatformMetrics({
      queue: () => stores.queue.stats(),
      workers: () => ({ size: this.#pool?.size ?? 0, busy: this.#pool?.busy ?? 0 }),
      devicesConnected: () => 0,
    });
    const inputs = s3InputSource(storage);
    // Segmented runs: any worker of the deployment folds any step, from the shared checkpoints.
    const checkpoints = await openRunCheckpoints(c, s3ObjectBucket(storage, c.s3.bucket));
    this.#life.defer(() => checkpoints.close(), 'run checkpoints');
    let shadowRunner: ShadowRunner | undefined;
    // Shadow runs are recorded in the store: wherever the store is read, a plan may appear while running.
    const artifacts = c.algorithms.fromStore ? artifactStoreClient(c) : undefined;
    if (artifacts !== undefined) this.#life.defer(() => Promise.resolve(artifacts.close()), 'artifact store');
    const tracing = await openTracing({ otlpEndpoint: c.tracing.otlpEndpoint, serviceName: 'arteria-worker', serviceInstanceId: c.instanceId, onError: (err) => deps.onError?.(err) });
    this.#life.defer(() => tracing.close(), 'tracing');
    const plane = buildWorkerPlane(
      {
        registry,
        tracer: tracing.tracer,
        queue: stores.queue,
        ledger: stores.ledger,
        checkpoints,
        inputs,
        results,
        metrics,
        onError: report,
        ...(deps.logger ? { logger: deps.logger } : {}),
        shadow: (executor) =>
          artifacts === undefined
            ? undefined
            : (shadowRunner = new ShadowRunner({
                plans: loaded.shadows,
                refOf: (name, version) => registry.resolve(`${name}@${version}`).ref,
                executor,
                inputs,
                record: (record, name) => artifacts.store.putShadowRecord(record, name),
                maxInputBytes: c.worker.maxInputBytes,
              })),
      },
      { threadsPerAlgorithm: c.worker.threadsPerAlgorithm, inferenceModule: inferenceModuleUrl(c.inference), visibilityMs: c.worker.visibilityMs, leaseWaitMs: c.worker.leaseWaitMs, maxInputBytes: c.worker.maxInputBytes, maxDeliveries: c.queue.maxDeliveries, segmentedRunIdleMs: c.worker.segmentedRunIdleMs },
      { defer: (label, cleanup) => this.#life.defer(async () => cleanup(), label) },
    );
    const pool = plane.pool;
    this.#pool = pool; // drained first by close(), before the cleanups run
    await this.#life.serve({ metrics: metrics.registry, status: () => Promise.resolve(this.status()) }, { ...c.http, dataDir: c.dataDir }, undefined, deps.logger);
    // Warmed once the port is ours: a port conflict then fails alone, not after a warm-up it cut short.
    plane.warm(report);
    pool.resize(c.worker.concurrency);
    // Promotions, retirements and shadow plans take effect while running: the next task
    // resolves its pinned version in the new registry; tasks in hand finish on theirs.
    const watch = AlgorithmStoreWatch.start(c, 'worker', deps.algorithmDirs, registry, loaded, {
      onChange: (next) => {
        shadowRunner?.setPlans(next.shadows);
        plane.warm(report);
        deps.logger?.info({ event: 'algorithms-changed', versions: versionsOf(registry) }, `algorithms now ${versionsOf(registry).join(', ') || 'none'}`);
      },
      onError: report,
    });
    if (watch !== undefined) this.#life.defer(() => watch.close(), 'artifact store watch');
    // The cluster's operations surface learns who works from the roster, not from each worker's /metrics.
    const roster = await openWorkerRoster(c);
    this.#life.defer(() => roster.close(), 'worker roster');
    const heartbeat = new WorkerHeartbeatWriter(roster, () => ({ instanceId: c.instanceId, pool: c.worker.pool, concurrency: c.worker.concurrency, busy: pool.busy }), deps.logger);
    this.#heartbeat = heartbeat;
    this.#life.defer(() => heartbeat.close(c.instanceId), 'worker heartbeat');
    await heartbeat.beat();
  }

  /**
   * Drains: stops leasing, lets tasks in hand finish for at most `drainTimeoutMs`, then
   * closes everything. Resolves true when every task in hand finished. Idempotent.
   */
  async close(): Promise<boolean> {
    // Liveness stays up while draining; then HTTP, publisher, runner, stores close.
    return this.#life.close(async () => {
      await this.#heartbeat?.draining();
      return this.#pool === undefined ? true : within(this.#pool.close(), this.config.worker.drainTimeoutMs);
    });
  }
}
