export {
  SqliteWorkQueue,
  SqliteWorkQueueOptions,
  compileSqliteWorkQueueOptions,
  type SqliteWorkQueueConfig,
  type SqliteSynchronous,
  type WorkQueue,
  type WorkQueueOptions,
  type EnqueueOptions,
  type EnqueueResult,
  type Lease,
  type LeaseOptions,
  type QueueStats,
  type DeadLetter,
} from './queue/index.js';
export {
  SqliteRequestLedger,
  SqliteRequestLedgerOptions,
  type RequestLedger,
  type LedgerEntry,
  type LedgerCounts,
  type AcceptedRequest,
} from './ledger/index.js';
export {
  AlgorithmRegistry,
  AlgorithmRunner,
  artifactDigest,
  inputContractProblem,
  type RegisteredAlgorithm,
  type ArtifactDigest,
  type AlgorithmRunnerOptions,
  type RunOptions,
  type RunResult,
  type RunnerStats,
} from './algorithms/index.js';
export { EmbeddedPlatform, EMBEDDED_S3_CREDENTIALS, type PlatformStatus, type PlatformState } from './embedded/embedded-platform.js';
export { EmbeddedBroker, type BrokerHooks, type BrokerOptions } from './embedded/mqtt-broker.js';
export { EmbeddedObjectStore, type ObjectStoreOptions } from './embedded/object-store.js';
export { EmbeddedPlatformOptions, parseEmbeddedOptions, type EmbeddedPlatformInput } from './config.js';
export { identify, serviceToken, serviceUsername, type Identity, type Secrets } from './auth/identity.js';
export { Ingest, type IngestDeps, type IngestOutcome, type AlgorithmResolver } from './ingest/ingest.js';
export { TaskV1, encodeTask, decodeTask } from './ingest/task.js';
export { Worker, type WorkerDeps, type WorkerSettings, type WorkerState, type AlgorithmExecutor } from './worker/worker.js';
export { WorkerPool } from './worker/worker-pool.js';
export { PlatformMetrics, type PlatformGaugeSource } from './metrics/metrics.js';
export { OpsHttpServer, type HttpRoutes } from './http/http-server.js';
export { DeviceDirectory, type DeviceRecord } from './devices/device-directory.js';
export { MqttResultPublisher, type MqttPublisherOptions } from './results/mqtt-result-publisher.js';
export type { ResultPublisher } from './results/result-publisher.js';
export { createS3Client, fetchInput, parseS3Uri, type S3Settings } from './storage/s3.js';
