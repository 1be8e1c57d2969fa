/** How a value written as text (environment, flag) becomes a config value. */
export type KeyType = 'string' | 'int' | 'bool' | 'list';

export interface ConfigKey {
  /** Dotted path in the config, e.g. `mqtt.url`. */
  path: string;
  type: KeyType;
  /** Printed masked by `config --explain`. */
  secret?: boolean;
  /** A widely used variable read too, under the ARTERIA_ one (LOG_LEVEL). */
  envAlias?: string;
}

/**
 * Every leaf of ClusterConfig. A test checks this table against the schema, so a key
 * added there without a line here fails the build's tests.
 */
export const CONFIG_KEYS: readonly ConfigKey[] = [
  { path: 'instanceId', type: 'string' },
  { path: 'dataDir', type: 'string' },
  { path: 'mqtt.url', type: 'string' },
  { path: 'mqtt.sharedGroup', type: 'string' },
  { path: 'mqtt.sessionExpiryS', type: 'int' },
  { path: 'mqtt.keepaliveS', type: 'int' },
  { path: 'mqtt.selfCheckIntervalMs', type: 'int' },
  { path: 'mqtt.selfCheckTimeoutMs', type: 'int' },
  { path: 'mqtt.caFile', type: 'string' },
  { path: 'mqtt.certFile', type: 'string' },
  { path: 'mqtt.keyFile', type: 'string' },
  { path: 'ingest.source', type: 'string' },
  { path: 'ingest.natsServers', type: 'string' },
  { path: 'ingest.natsStream', type: 'string' },
  { path: 'ingest.natsConsumer', type: 'string' },
  { path: 'ingest.natsReplicas', type: 'int' },
  { path: 'ingest.natsMaxAgeMs', type: 'int' },
  { path: 'ingest.natsAckWaitMs', type: 'int' },
  { path: 'ingest.natsMaxInHand', type: 'int' },
  { path: 'ingest.entitlementsFile', type: 'string' },
  { path: 'ingest.canaryCheckIntervalMs', type: 'int' },
  { path: 'ingest.canaryWindow', type: 'int' },
  { path: 'ingest.ratePerMinute', type: 'int' },
  { path: 'ingest.rateBurst', type: 'int' },
  { path: 'ingest.maxOpenSegmentedRunsPerDevice', type: 'int' },
  { path: 'ingest.grantRatePerMinute', type: 'int' },
  { path: 'ingest.grantRateBurst', type: 'int' },
  { path: 'ingest.replyRatePerMinute', type: 'int' },
  { path: 'ingest.replyRateBurst', type: 'int' },
  { path: 'ingest.allowIdentifiedInputs', type: 'list' },
  { path: 'ingest.revocationsFile', type: 'string' },
  { path: 's3.endpoint', type: 'string' },
  { path: 's3.region', type: 'string' },
  { path: 's3.bucket', type: 'string' },
  { path: 's3.accessKeyId', type: 'string' },
  { path: 's3.secretAccessKey', type: 'string', secret: true },
  { path: 's3.forcePathStyle', type: 'bool' },
  { path: 's3.publicEndpoint', type: 'string' },
  { path: 's3.grantTtlMs', type: 'int' },
  { path: 'queue.kind', type: 'string' },
  { path: 'queue.path', type: 'string' },
  { path: 'queue.synchronous', type: 'string' },
  { path: 'queue.natsServers', type: 'string' },
  { path: 'queue.natsStream', type: 'string' },
  { path: 'queue.maxDeliveries', type: 'int' },
  { path: 'queue.gpuPool', type: 'bool' },
  { path: 'queue.sqsEndpoint', type: 'string' },
  { path: 'queue.sqsRegion', type: 'string' },
  { path: 'queue.sqsName', type: 'string' },
  { path: 'queue.sqsAccessKeyId', type: 'string' },
  { path: 'queue.sqsSecretAccessKey', type: 'string', secret: true },
  { path: 'nats.user', type: 'string' },
  { path: 'nats.passwordFile', type: 'string' },
  { path: 'nats.credsFile', type: 'string' },
  { path: 'ledger.kind', type: 'string' },
  { path: 'ledger.path', type: 'string' },
  { path: 'ledger.natsStream', type: 'string' },
  { path: 'ledger.signingKeyFile', type: 'string' },
  { path: 'http.host', type: 'string' },
  { path: 'http.port', type: 'int' },
  { path: 'http.token', type: 'string', secret: true },
  { path: 'http.tlsCertFile', type: 'string' },
  { path: 'http.tlsKeyFile', type: 'string' },
  { path: 'worker.concurrency', type: 'int' },
  { path: 'worker.visibilityMs', type: 'int' },
  { path: 'worker.leaseWaitMs', type: 'int' },
  { path: 'worker.maxInputBytes', type: 'int' },
  { path: 'worker.threadsPerAlgorithm', type: 'int' },
  { path: 'worker.drainTimeoutMs', type: 'int' },
  { path: 'worker.segmentedRunIdleMs', type: 'int' },
  { path: 'worker.pool', type: 'string' },
  { path: 'inference.backend', type: 'string' },
  { path: 'inference.url', type: 'string' },
  { path: 'inference.intraOpThreads', type: 'int' },
  { path: 'inference.maxBatchFrames', type: 'int' },
  { path: 'inference.requireDigest', type: 'bool' },
  { path: 'inference.executionProviders', type: 'list' },
  { path: 'algorithms.dirs', type: 'list' },
  { path: 'algorithms.bundled', type: 'bool' },
  { path: 'algorithms.trustedKeyFiles', type: 'list' },
  { path: 'algorithms.requireSignatures', type: 'bool' },
  { path: 'algorithms.fromStore', type: 'bool' },
  { path: 'algorithms.storeBucket', type: 'string' },
  { path: 'algorithms.storePrefix', type: 'string' },
  { path: 'algorithms.storeStages', type: 'list' },
  { path: 'algorithms.cacheDir', type: 'string' },
  { path: 'algorithms.storePollMs', type: 'int' },
  { path: 'autoscale.target', type: 'string' },
  { path: 'autoscale.grpcHost', type: 'string' },
  { path: 'autoscale.grpcPort', type: 'int' },
  { path: 'autoscale.metricName', type: 'string' },
  { path: 'autoscale.namespace', type: 'string' },
  { path: 'autoscale.deployment', type: 'string' },
  { path: 'autoscale.minWorkers', type: 'int' },
  { path: 'autoscale.gpuMinWorkers', type: 'int' },
  { path: 'autoscale.gpuMaxWorkers', type: 'int' },
  { path: 'autoscale.gpuDeployment', type: 'string' },
  { path: 'autoscale.maxWorkers', type: 'int' },
  { path: 'autoscale.intervalMs', type: 'int' },
  { path: 'autoscale.waitBudgetMs', type: 'int' },
  { path: 'autoscale.epsilonExponent', type: 'int' },
  { path: 'autoscale.workerStartupMs', type: 'int' },
  { path: 'autoscale.serviceMs', type: 'int' },
  { path: 'autoscale.serviceCvPercent', type: 'int' },
  { path: 'autoscale.requestsPerRun', type: 'int' },
  { path: 'autoscale.scaleInDelayMs', type: 'int' },
  { path: 'autoscale.rateSmoothingMs', type: 'int' },
  { path: 'log.level', type: 'string', envAlias: 'LOG_LEVEL' },
  { path: 'tracing.otlpEndpoint', type: 'string', envAlias: 'OTEL_EXPORTER_OTLP_ENDPOINT' },
  { path: 'secrets.platformSecret', type: 'string', secret: true },
  { path: 'secrets.file', type: 'string' },
];

const words = (path: string): string[] => path.split('.').flatMap((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(' '));

/** `worker.visibilityMs` -> `ARTERIA_WORKER_VISIBILITY_MS`. */
export const envName = (path: string): string => `ARTERIA_${words(path).join('_').toUpperCase()}`;

/** `worker.visibilityMs` -> `--worker-visibility-ms`. */
export const flagName = (path: string): string => `--${words(path).join('-')}`;
