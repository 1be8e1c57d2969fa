import { z } from 'zod';
import { ArteriaError, ID_PATTERN } from '@arteria/protocol';
import { LOG_LEVELS } from '@arteria/telemetry';
import { WORKER_POOLS } from '@arteria/ports';

const port = z.number().int().min(0).max(65535);
const id = z.string().regex(ID_PATTERN, 'lowercase letters, digits, - and _, starting with a letter or digit');

/**
 * The one configuration of Arteria's cluster roles (ingest, worker, broker files). Every
 * role reads the same schema, from file, environment and flags; unknown keys are
 * rejected so a typo fails at start-up instead of silently using a default.
 */
export const ClusterConfig = z.strictObject({
  /** Stable name of this process: the ingest MQTT client id (its session) and metrics label. */
  instanceId: id.default('local'),
  dataDir: z.string().min(1).default('.arteria'),
  mqtt: z
    .strictObject({
      url: z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL').default('mqtt://127.0.0.1:1883'),
      /** Ingest processes with the same group share requests (`$share/{group}/...`). */
      sharedGroup: id.default('arteria-ingest'),
      /**
       * 0: clean ingest sessions, so a dead ingest holds no requests (devices resend what got
       * no answer). Above 0: the broker keeps an away ingest's session, and the requests
       * routed to it, this long (docs/architecture.md, "Ingest sessions").
       */
      sessionExpiryS: z.number().int().min(0).max(4_294_967_295).default(0),
      /** How often each ingest sends itself a canary request through the broker; its return drives /readyz. */
      selfCheckIntervalMs: z.number().int().min(100).default(5_000),
      /** How long the canary may take to come back before the ingest counts a failure and repairs. */
      selfCheckTimeoutMs: z.number().int().min(50).default(3_000),
      keepaliveS: z.number().int().min(5).max(3600).default(30),
      /** mqtts://: PEM CA bundle for a private CA (empty: the system's CAs). */
      caFile: z.string().default(''),
      /** mqtts://: client certificate and key, for brokers that authenticate by certificate (AWS IoT Core). */
      certFile: z.string().default(''),
      keyFile: z.string().default(''),
    })
    .prefault({}),
  ingest: z
    .strictObject({
      /** mqtt: an MQTT 5 subscription (Mosquitto, EMQX, IoT Core). nats-stream: a JetStream stream capturing what devices publish into NATS's MQTT listener. */
      source: z.enum(['mqtt', 'nats-stream']).default('mqtt'),
      /** nats-stream: servers, comma separated. Empty: queue.natsServers. */
      natsServers: z.string().default(''),
      /** nats-stream: the capture stream on `arteria.v1.*.*.requests`, created or updated at start. */
      natsStream: z.string().regex(/^[A-Za-z0-9_-]{1,48}$/).default('ARTERIA_REQUESTS'),
      /** nats-stream: durable consumer every ingest process shares. */
      natsConsumer: z.string().regex(/^[A-Za-z0-9_-]{1,48}$/).default('arteria-ingest'),
      natsReplicas: z.number().int().min(1).max(5).default(1),
      /** nats-stream: requests older than this leave the stream unadmitted (the gateway resends what got no result). */
      natsMaxAgeMs: z.number().int().min(1_000).default(86_400_000),
      /** nats-stream: a request unacknowledged this long goes to another ingest process. */
      natsAckWaitMs: z.number().int().min(100).default(30_000),
      /** nats-stream: requests one process admits at once. */
      natsMaxInHand: z.number().int().min(1).max(10_000).default(64),
      /** JSON file of which algorithm versions each tenant and device may run (docs/operations.md); empty: every registered one. */
      entitlementsFile: z.string().default(''),
      /** How often ingest judges canaries that have rollback bounds (docs/algorithms.md), reading the recent ledger window. */
      canaryCheckIntervalMs: z.number().int().min(100).default(10_000),
      /** Recent ledger results each canary check reads. */
      canaryWindow: z.number().int().min(10).max(100_000).default(2_000),
      /** New requests one device may have admitted per minute by each ingest process (RATE_LIMITED beyond); 0: no limit. */
      ratePerMinute: z.number().int().min(0).default(600),
      /** New requests one device may have admitted at once after a quiet spell. */
      rateBurst: z.number().int().min(1).default(120),
      /** Segmented runs one device may hold open at once through each ingest process (a run-open beyond is refused TOO_MANY_OPEN_RUNS); a run frees its slot when it ends, is abandoned or expires; 0: no cap. */
      maxOpenSegmentedRunsPerDevice: z.number().int().min(0).default(8),
      /** Upload grant requests one device may make per minute to each ingest process (answered RATE_LIMITED beyond); 0: no limit. */
      grantRatePerMinute: z.number().int().min(0).default(600),
      /** Upload grant requests one device may make at once. */
      grantRateBurst: z.number().int().min(1).default(240),
      /** Answers to messages ingest does not admit (refusals it does not record, probe answers) per device and minute: beyond, one RATE_LIMITED, then none until the budget refills; 0: no limit. */
      replyRatePerMinute: z.number().int().min(0).default(600),
      /** Such answers at once. */
      replyRateBurst: z.number().int().min(1).default(120),
      /** Tenants whose inputs may run without declaring de-identification (default none: DEIDENTIFICATION_MISSING). */
      allowIdentifiedInputs: z.array(z.string().regex(ID_PATTERN)).default([]),
      /** The revocation list (`arteria cluster device revoke` writes it; reread when it changes): revoked devices' requests are refused. Empty: none. */
      revocationsFile: z.string().default(''),
    })
    .prefault({}),
  s3: z
    .strictObject({
      /** Empty for AWS S3 (the SDK's regional endpoint); MinIO/s3rver need the URL. */
      endpoint: z.string().default(''),
      region: z.string().min(1).default('us-east-1'),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,62}$/).default('arteria-runs'),
      accessKeyId: z.string().default(''),
      secretAccessKey: z.string().default(''),
      /** true for MinIO and s3rver; false for AWS S3 virtual-hosted buckets. */
      forcePathStyle: z.boolean().default(true),
      /**
       * The store's address as devices reach it, for the upload grants ingest signs (the host
       * is part of each signature). Empty: `endpoint`.
       */
      publicEndpoint: z.string().default(''),
      /** How long a device's upload grant (its presigned URLs) stays valid. */
      grantTtlMs: z.number().int().min(1000).max(60 * 60 * 1000).default(5 * 60 * 1000),
    })
    .prefault({}),
  queue: z
    .strictObject({
      /** sqlite: one machine. nats: JetStream, any number of machines. sqs: Amazon SQS (or an SQS-API server); see docs/queue-engines.md. */
      kind: z.enum(['sqlite', 'nats', 'sqs']).default('sqlite'),
      /** SQLite (and the sqs kind's task records): a file every process on this machine shares. Empty: {dataDir}/platform.db. */
      path: z.string().default(''),
      synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
      /** NATS: servers, comma separated. */
      natsServers: z.string().default('nats://127.0.0.1:4222'),
      /** NATS: work stream name (`{name}_RECORDS` and `{name}_DLQ` beside it). */
      natsStream: z.string().regex(/^[A-Za-z0-9_-]{1,48}$/).default('ARTERIA_TASKS'),
      maxDeliveries: z.number().int().min(1).max(100).default(5),
      /**
       * Route algorithms whose manifest sets resources.gpu to the gpu pool's queue (a queue of
       * its own: `{natsStream}_GPU`, `{sqsName}-gpu`, SQLite tables `queue_gpu_*`), which only
       * workers with `worker.pool: gpu` lease. Off: every task goes to the cpu pool's queue.
       */
      gpuPool: z.boolean().default(false),
      /** SQS: endpoint URL; empty for AWS (the regional endpoint). */
      sqsEndpoint: z.string().default(''),
      sqsRegion: z.string().min(1).default('us-east-1'),
      /** SQS: work queue name (`{name}-dlq` beside it); both are created when missing. */
      sqsName: z.string().regex(/^[A-Za-z0-9_-]{1,76}$/).default('arteria-tasks'),
      /** SQS: static credentials; both empty: the AWS SDK's default chain (environment, profile, role). */
      sqsAccessKeyId: z.string().default(''),
      sqsSecretAccessKey: z.string().default(''),
    })
    .prefault({}),
  nats: z
    .strictObject({
      /**
       * The user of every platform NATS connection (queue, ledger, capture ingest), with
       * passwordFile. Empty (and no credsFile): no credentials, the server's no_auth_user.
       */
      user: z.string().default(''),
      /** File holding that user's password (one trailing newline ignored). */
      passwordFile: z.string().default(''),
      /** Operator-mode servers: a `.creds` file (user JWT and nkey seed), instead of user and password. */
      credsFile: z.string().default(''),
    })
    .prefault({}),
  ledger: z
    .strictObject({
      /** sqlite: processes on one machine. nats: shared by every machine (JetStream, queue.natsServers). */
      kind: z.enum(['sqlite', 'nats']).default('sqlite'),
      /** SQLite file. Empty: the queue's SQLite file, or {dataDir}/platform.db. */
      path: z.string().default(''),
      /** NATS: ledger stream name. */
      natsStream: z.string().regex(/^[A-Za-z0-9_-]{1,48}$/).default('ARTERIA_LEDGER'),
      /**
       * Ed25519 key (PKCS#8 PEM, 0600) that signs the ledger's checkpoints; every process
       * writing one ledger uses the same file. Empty: {dataDir}/ledger-signing-key.pem,
       * made on first start.
       */
      signingKeyFile: z.string().default(''),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: port.default(18832),
      /**
       * Operator token for the dashboard, /api/* and /metrics (bearer, or sign in at /login).
       * Empty: {dataDir}/ops-token, made on first start (0600). /healthz and /readyz stay open.
       */
      token: z.string().default(''),
      /** PEM certificate and key: serve HTTPS. Both or neither. */
      tlsCertFile: z.string().default(''),
      tlsKeyFile: z.string().default(''),
    })
    .prefault({}),
  worker: z
    .strictObject({
      /** Tasks this process works on at once. */
      concurrency: z.number().int().min(1).max(256).default(2),
      visibilityMs: z.number().int().min(100).default(30_000),
      leaseWaitMs: z.number().int().min(0).default(1_000),
      maxInputBytes: z.number().int().positive().default(2 * 1024 ** 3),
      /** A run sent while it is acquired that folds no new segment for this long ends RUN_EXPIRED, and is released. */
      segmentedRunIdleMs: z.number().int().min(1000).default(30 * 60_000),
      threadsPerAlgorithm: z.number().int().min(1).max(64).default(2),
      /** SIGTERM: stop leasing, finish tasks in hand for at most this long, then exit. Keep terminationGracePeriodSeconds above it. */
      drainTimeoutMs: z.number().int().min(0).default(60_000),
      /** The pool whose queue this process leases from: cpu, or gpu (algorithms with resources.gpu, where queue.gpuPool routes them). */
      pool: z.enum(WORKER_POOLS).default('cpu'),
    })
    .prefault({}),
  inference: z
    .strictObject({
      /** Where algorithms' models run: ONNX Runtime in each algorithm thread, or a KServe v2 server (Triton, KServe, `arteria serve-models`). */
      backend: z.enum(['onnxruntime', 'kserve-v2']).default('onnxruntime'),
      /** kserve-v2: the server's base URL, e.g. http://triton:8000. */
      url: z.string().default(''),
      /** onnxruntime: threads one operator may use in each algorithm thread. */
      intraOpThreads: z.number().int().min(0).max(256).default(1),
      /** Largest frame batch per model call; 0: all frames (onnxruntime) or the server's reported max_batch_size (kserve-v2; set it for Triton). */
      maxBatchFrames: z.number().int().min(0).max(1_000_000).default(0),
      /** kserve-v2: refuse a server that does not report the model's digest (Triton does not). */
      requireDigest: z.boolean().default(false),
      /**
       * onnxruntime: execution providers in order of preference (tensorrt, cuda, cpu) for
       * algorithms whose manifest sets resources.gpu; the first that loads is used, and other
       * algorithms always run on the CPU. The GPU image sets [cuda, cpu].
       */
      executionProviders: z.array(z.enum(['tensorrt', 'cuda', 'cpu'])).min(1).max(3).default(['cpu']),
    })
    .prefault({}),
  algorithms: z
    .strictObject({
      /** Extra algorithm folders, besides the ones that ship with Arteria. */
      dirs: z.array(z.string().min(1)).default([]),
      /** Load the bundled algorithms too. */
      bundled: z.boolean().default(true),
      /** Ed25519 public keys (PEM) whose artifact signatures count (`arteria algorithm keygen`). */
      trustedKeyFiles: z.array(z.string().min(1)).default([]),
      /** Refuse to load an algorithm version without a valid signature by one of them (ARTIFACT_UNSIGNED). */
      requireSignatures: z.boolean().default(false),
      /** Also load the versions published to the artifact store (`arteria algorithm publish`), fetched at start. */
      fromStore: z.boolean().default(false),
      /** The store's bucket on the s3 endpoint; empty: s3.bucket. */
      storeBucket: z.string().regex(/^([a-z0-9][a-z0-9.-]{1,62})?$/).default(''),
      /** Key prefix of the store in that bucket. */
      storePrefix: z.string().regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/$/, 'a key prefix ending in /').default('_algorithms/'),
      /** Release stages loaded: released (a cluster); add validated on a staging cluster. */
      storeStages: z.array(z.enum(['dev', 'validated', 'released'])).min(1).max(3).default(['released']),
      /** Where fetched versions are unpacked (a sub-folder per process); empty: {dataDir}/algorithm-cache. */
      cacheDir: z.string().default(''),
      /**
       * How often a running process reads the store's release records and shadow plans: a
       * promotion, retirement or shadow change takes effect within this interval, without a
       * restart. 0: read at start only.
       */
      storePollMs: z.number().int().min(0).max(24 * 60 * 60 * 1000).default(10_000),
    })
    .prefault({}),
  autoscale: z
    .strictObject({
      /** `arteria autoscaler`: publish the count to KEDA (external scaler, gRPC) or patch a Deployment's scale subresource. */
      target: z.enum(['keda', 'kubernetes']).default('keda'),
      /** keda: where the external scaler listens (the ScaledObject's scalerAddress). */
      grpcHost: z.string().default('127.0.0.1'),
      grpcPort: port.default(9090),
      metricName: z.string().min(1).default('arteria-workers'),
      /** kubernetes: the workers' Deployment. */
      namespace: z.string().min(1).default('arteria'),
      deployment: z.string().min(1).default('arteria-worker-cpu'),
      minWorkers: z.number().int().min(0).max(10_000).default(1),
      /**
       * The gpu pool's floor and ceiling. It is sized from its own queue (backlog per worker,
       * scale-in after scaleInDelayMs); 0 lets its Deployment (and its GPU nodes) rest at
       * zero while no GPU task waits.
       */
      gpuMinWorkers: z.number().int().min(0).max(10_000).default(0),
      gpuMaxWorkers: z.number().int().min(0).max(10_000).default(16),
      /** kubernetes: the gpu pool's Deployment. */
      gpuDeployment: z.string().min(1).default('arteria-worker-gpu'),
      maxWorkers: z.number().int().min(1).max(10_000).default(64),
      intervalMs: z.number().int().min(50).default(5_000),
      waitBudgetMs: z.number().int().min(0).default(2_000),
      /** Target P(wait > waitBudgetMs), as a power of ten: 4 means 1e-4. */
      epsilonExponent: z.number().int().min(1).max(12).default(4),
      /** Node start plus model load before a new worker takes work. */
      workerStartupMs: z.number().int().min(0).default(60_000),
      /** Priors until measurements accumulate. */
      serviceMs: z.number().int().positive().default(1_000),
      serviceCvPercent: z.number().int().min(0).max(1_000).default(100),
      requestsPerRun: z.number().int().min(1).default(1),
      scaleInDelayMs: z.number().int().min(0).default(300_000),
      rateSmoothingMs: z.number().int().positive().default(30_000),
    })
    .prefault({}),
  log: z
    .strictObject({
      /** Least severe level written (JSON lines on stderr); `LOG_LEVEL` sets it too. info: one line per request lifecycle event. */
      level: z.enum(LOG_LEVELS).default('info'),
    })
    .prefault({}),
  tracing: z
    .strictObject({
      /**
       * OTLP/HTTP base URL of an OpenTelemetry collector (`http://collector:4318`; spans go to
       * `/v1/traces`); `OTEL_EXPORTER_OTLP_ENDPOINT` sets it too. Empty: tracing off (no SDK loaded).
       */
      otlpEndpoint: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })]).default(''),
    })
    .prefault({}),
  secrets: z
    .strictObject({
      /** Derives the platform services' broker passwords. */
      platformSecret: z.string().default(''),
      /** JSON file with {platformSecret, tenants}; `arteria up` writes one in its data folder. */
      file: z.string().default(''),
    })
    .prefault({}),
});
export type ClusterConfig = z.output<typeof ClusterConfig>;
export type ClusterConfigInput = z.input<typeof ClusterConfig>;

/** Validates a configuration (unknown keys rejected) into a frozen config. */
export function parseClusterConfig(input: unknown): Readonly<ClusterConfig> {
  const parsed = ClusterConfig.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new ArteriaError('CONFIG_INVALID', `${where}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return Object.freeze(parsed.data);
}
