import { toArteriaError } from '@arteria/protocol';
import { DeviceDirectory, WatchedRevocations, type RequestLedger, type WorkerPoolName, type WorkQueue } from '@arteria/ports';
import { CanaryGuard, EntitlementPolicy, RefusalLog, buildIngest, type RefusalSummary } from '@arteria/ingest';
import { PlatformMetrics, openTracing } from '@arteria/telemetry';
import { MqttResultPublisher, brokerServiceCredentials, MqttIngestService, loadMqttTls } from '@arteria/engine-mqtt';
import type { ClusterConfig } from './cluster-config.js';
import { NatsCaptureIngestService, readNatsAuth } from '@arteria/engine-nats';
import { RoleLifecycle, type RoleState } from './role-lifecycle.js';
import { openSharedStores } from './stores.js';
import { artifactStoreClient, loadRoleAlgorithms } from './role-algorithms.js';
import { AlgorithmStoreWatch } from './algorithm-watch.js';
import { versionsOf, type RoleDeps } from './worker-role.js';
import { LiveRegistry } from '@arteria/worker';
import { createS3Client, UploadGrantIssuer } from '@arteria/engine-s3';

export interface IngestRoleStatus {
  role: 'ingest';
  instanceId: string;
  state: RoleState;
  connected: boolean;
  /** Able to admit: for MQTT, the last canary request came back through the broker. */
  ready: boolean;
  /** MQTT: the canary self-check (absent for the NATS stream source). */
  selfCheck?: { ok: boolean; failuresInARow: number; lastOkAt: number | null };
  /** Requests this process acknowledged (accepted, duplicate or rejected). */
  handled: number;
  devices: { known: number; online: number; inProcedure: number };
  /** What this process refused at admission since it started. */
  refusals: RefusalSummary;
  /** The algorithm versions requests resolve to now (`name@version`). */
  algorithms: string[];
}

/** The gpu pool's queue where the deployment routes GPU algorithms there (queue.gpuPool). */
const gpuQueueOf = (queues: ReadonlyMap<WorkerPoolName, WorkQueue>): { gpuQueue?: WorkQueue } => {
  const gpu = queues.get('gpu');
  return gpu === undefined ? {} : { gpuQueue: gpu };
};

/** What an ingest transport exposes to the role. */
interface IngestTransport {
  readonly connected: boolean;
  /** Able to admit (drives /readyz). */
  readonly ready: boolean;
  readonly selfCheck?: IngestRoleStatus['selfCheck'];
  readonly handled: number;
  close(): Promise<void>;
}

/**
 * `arteria ingest`: admits device requests into the shared queue, either as an MQTT 5
 * client of the cluster broker (MqttIngestService) or from a JetStream stream capturing
 * what devices publish into NATS's MQTT listener (NatsCaptureIngestService); see each for
 * its acknowledgement rule.
 */
export class IngestRole {
  readonly #life = new RoleLifecycle();
  readonly http = this.#life.http;
  readonly devices = new DeviceDirectory();
  /** What this process refused at admission (its /status shows the latest). */
  readonly refusals = new RefusalLog();
  readonly config: Readonly<ClusterConfig>;
  #service: IngestTransport | undefined;
  #registry: LiveRegistry | undefined;

  private constructor(config: Readonly<ClusterConfig>) {
    this.config = config;
  }

  static async start(config: Readonly<ClusterConfig>, deps: RoleDeps): Promise<IngestRole> {
    const role = new IngestRole(config);
    await role.#life.start(() => role.#start(deps));
    return role;
  }

  get state(): RoleState {
    return this.#life.state;
  }

  status(): IngestRoleStatus {
    return {
      role: 'ingest',
      instanceId: this.config.instanceId,
      state: this.#life.state,
      connected: this.#service?.connected ?? false,
      ready: this.#service?.ready ?? false,
      ...(this.#service?.selfCheck ? { selfCheck: this.#service.selfCheck } : {}),
      handled: this.#service?.handled ?? 0,
      devices: this.devices.counts(),
      refusals: this.refusals.summary(20),
      algorithms: this.#registry === undefined ? [] : versionsOf(this.#registry),
    };
  }

  async #start(deps: RoleDeps): Promise<void> {
    const c = this.config;
    const stores = await openSharedStores(c, deps.queueFactories);
    this.#life.defer(() => stores.close());
    const loaded = await loadRoleAlgorithms(c, 'ingest', deps.algorithmDirs);
    const registry = new LiveRegistry(loaded.registry);
    this.#registry = registry;
    // A promotion or retirement changes what requests resolve to within algorithms.storePollMs.
    const watch = AlgorithmStoreWatch.start(c, 'ingest', deps.algorithmDirs, registry, loaded, {
      onChange: () => deps.logger?.info({ event: 'algorithms-changed', versions: versionsOf(registry) }, `algorithms now ${versionsOf(registry).join(', ') || 'none'}`),
      onError: (err) => deps.onError?.(err),
    });
    if (watch !== undefined) this.#life.defer(() => watch.close());
    const credentials = brokerServiceCredentials(deps.platformSecret, 'ingest');
    const tls = await loadMqttTls(c.mqtt);
    const results = await MqttResultPublisher.connect({ url: c.mqtt.url, tls, serviceName: 'ingest', platformSecret: deps.platformSecret, credentials });
    this.#life.defer(() => results.close());
    const metrics = new PlatformMetrics({ queue: () => stores.queue.stats(), devicesConnected: () => 0 });
    const tracing = await openTracing({ otlpEndpoint: c.tracing.otlpEndpoint, serviceName: 'arteria-ingest', serviceInstanceId: c.instanceId, onError: (err) => deps.onError?.(err) });
    this.#life.defer(() => tracing.close());
    // Devices hold no store keys: ingest signs their per-object upload grants with its own.
    const s3 = { region: c.s3.region, accessKeyId: c.s3.accessKeyId, secretAccessKey: c.s3.secretAccessKey, forcePathStyle: c.s3.forcePathStyle };
    const storeClient = createS3Client({ ...s3, ...(c.s3.endpoint === '' ? {} : { endpoint: c.s3.endpoint }) });
    const publicEndpoint = c.s3.publicEndpoint === '' ? c.s3.endpoint : c.s3.publicEndpoint;
    const signer = publicEndpoint === c.s3.endpoint ? storeClient : createS3Client({ ...s3, ...(publicEndpoint === '' ? {} : { endpoint: publicEndpoint }) });
    this.#life.defer(() => Promise.resolve(storeClient === signer ? storeClient.destroy() : (storeClient.destroy(), signer.destroy())));
    const grants = new UploadGrantIssuer({ signer, store: storeClient, bucket: c.s3.bucket, ttlMs: c.s3.grantTtlMs });
    const entitlements = await EntitlementPolicy.load(c.ingest.entitlementsFile);
    await this.#guardCanaries(entitlements, stores.ledger, deps);
    const ingest = buildIngest(
      { tracer: tracing.tracer, queue: stores.queue, ...gpuQueueOf(stores.queues), ledger: stores.ledger, algorithms: registry, results, metrics, refusals: this.refusals, grants, ...(deps.logger ? { logger: deps.logger } : {}) },
      {
        bucket: c.s3.bucket,
        entitlements,
        rate: { perMinute: c.ingest.ratePerMinute, burst: c.ingest.rateBurst },
        grantRate: { perMinute: c.ingest.grantRatePerMinute, burst: c.ingest.grantRateBurst },
        replyRate: { perMinute: c.ingest.replyRatePerMinute, burst: c.ingest.replyRateBurst },
        maxOpenSegmentedRunsPerDevice: c.ingest.maxOpenSegmentedRunsPerDevice,
        allowIdentifiedInputs: c.ingest.allowIdentifiedInputs,
        ...(c.ingest.revocationsFile === '' ? {} : { revocations: new WatchedRevocations(c.ingest.revocationsFile, { onError: (err) => deps.onError?.(err) }) }),
      },
    );
    await this.#life.serve({ metrics: metrics.registry, status: () => Promise.resolve(this.status()) }, { ...c.http, dataDir: c.dataDir }, () => this.#service?.ready ?? false, deps.logger);
    const ingestDeps = { ingest, devices: this.devices, onError: (err: Error) => deps.onError?.(toArteriaError(err)), ...(deps.logger ? { logger: deps.logger } : {}), metrics: metrics.registry };
    const service: IngestTransport =
      c.ingest.source === 'nats-stream'
        ? await NatsCaptureIngestService.start(
            {
              servers: (c.ingest.natsServers === '' ? c.queue.natsServers : c.ingest.natsServers).split(',').map((s) => s.trim()).filter((s) => s !== ''),
              stream: c.ingest.natsStream,
              consumer: c.ingest.natsConsumer,
              replicas: c.ingest.natsReplicas,
              maxAgeMs: c.ingest.natsMaxAgeMs,
              ackWaitMs: c.ingest.natsAckWaitMs,
              maxInHand: c.ingest.natsMaxInHand,
              connectionName: `arteria-${c.instanceId}-ingest`,
              auth: await readNatsAuth(c.nats),
            },
            ingestDeps,
          )
        : await MqttIngestService.start(
            { url: c.mqtt.url, tls, ...credentials, clientId: `${c.mqtt.sharedGroup}-${c.instanceId}`, sharedGroup: c.mqtt.sharedGroup, sessionExpiryS: c.mqtt.sessionExpiryS, keepaliveS: c.mqtt.keepaliveS, selfCheckIntervalMs: c.mqtt.selfCheckIntervalMs, selfCheckTimeoutMs: c.mqtt.selfCheckTimeoutMs },
            ingestDeps,
          );
    this.#service = service;
    this.#life.defer(() => service.close());
  }

  /** Canaries with rollback bounds are watched; stored withdrawals apply before the first request. */
  async #guardCanaries(policy: EntitlementPolicy, ledger: RequestLedger, deps: RoleDeps): Promise<void> {
    const c = this.config;
    if (!policy.canaries().some((entry) => entry.rollback !== undefined)) return;
    const artifacts = artifactStoreClient(c);
    this.#life.defer(() => Promise.resolve(artifacts.close()));
    const guard = new CanaryGuard({
      ledger,
      policy,
      store: artifacts.store,
      instance: c.instanceId,
      window: c.ingest.canaryWindow,
      intervalMs: c.ingest.canaryCheckIntervalMs,
      ...(deps.logger ? { logger: deps.logger } : {}),
      onError: (err) => deps.onError?.(toArteriaError(err)),
    });
    await guard.start();
    this.#life.defer(() => guard.close());
  }

  /** Stops taking requests, finishes those in hand, disconnects, closes. Idempotent. */
  async close(): Promise<void> {
    return this.#life.close(() => Promise.resolve());
  }
}
