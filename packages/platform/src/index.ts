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
  type ResultProvenance,
  auditLedger,
  type AuditSource,
  type AuditReport,
  type AuditFinding,
  type ChainRecord,
  LedgerSigner,
  LEDGER_KEY_FILE,
  loadOrCreateLedgerSigner,
  readTrustedKey,
  recordVerifier,
  type Checkpoint,
  provenanceOf,
  type Provenance,
  nextRecord,
  completedBody,
} from './ledger/index.js';
export {
  AlgorithmRegistry,
  AlgorithmRunner,
  artifactDigest,
  digestOfFiles,
  inputContractProblem,
  compileOutputCheck,
  type OutputCheck,
  ArtifactSignature,
  ArtifactTrustOptions,
  loadArtifactTrust,
  SIGNATURE_FILE,
  SIGNATURE_FORMAT,
  publicKeyId,
  readPrivateKey,
  readPublicKey,
  signArtifact,
  verifyArtifactSignature,
  parseArtifactSignature,
  type ArtifactTrust,
  type SignedStatement,
  readArchive,
  writeArchive,
  assertSafePath,
  type ArchiveEntry,
  ArtifactStore,
  DEFAULT_STORE_PREFIX,
  RELEASE_FORMAT,
  RELEASE_STAGES,
  ReleaseRecord,
  canMoveStage,
  parseReleaseRecord,
  verifyReleaseRecord,
  withStage,
  type ReleaseStage,
  syncReleasedAlgorithms,
  SHADOW_FORMAT,
  ShadowPlan,
  ShadowRecord,
  inShadowShare,
  shadowReport,
  formatShadowReport,
  type ShadowOutcome,
  type ShadowReport,
  assertStoreDigests,
  type SyncOptions,
  type SyncedVersion,
  type RegistryLoadOptions,
  type ResolveOptions,
  type RegisteredAlgorithm,
  type ArtifactDigest,
  type AlgorithmRunnerOptions,
  type RunOptions,
  type RunResult,
  type RunnerStats,
  type StreamSource,
} from './algorithms/index.js';
export { EmbeddedPlatform, EMBEDDED_S3_CREDENTIALS, type PlatformStatus, type PlatformState } from './embedded/embedded-platform.js';
export { PacketSizeGuard } from './embedded/packet-guard.js';
export { EmbeddedBroker, type BrokerHooks, type BrokerOptions } from './embedded/mqtt-broker.js';
export { EmbeddedObjectStore, type ObjectStoreOptions } from './embedded/object-store.js';
export { verifySignature } from './embedded/store-signature.js';
export { UploadGrantIssuer, type UploadGrantOptions } from './storage/upload-grants.js';
export { onnxRuntimeModuleUrl, kserveModuleUrl, inferenceModuleUrl, type OnnxRuntimeModuleOptions, type KServeModuleOptions } from './embedded/inference-module.js';
export { EmbeddedPlatformOptions, parseEmbeddedOptions, type EmbeddedPlatformInput } from './config.js';
export { identify, serviceToken, serviceUsername, type Identity, type Secrets } from './auth/identity.js';
export { checkClientId, serviceClientIdPrefix, type ClientIdRefusal } from './auth/client-id.js';
export { securityEventLine, type SecurityEvent, type SecurityEventKind, type SecurityEventSink } from './auth/security-events.js';
export { Ingest, type IngestDeps, type IngestOutcome, type ReceivedCopy, type AlgorithmResolver } from './ingest/ingest.js';
export { TaskV1, encodeTask, decodeTask } from './ingest/task.js';
export { admit, type AdmissionRules } from './ingest/admission.js';
export { DeadLetterDesk, type DeadLetterDeskDeps, type DeadLetterView, type ReplayOutcome } from './dlq/dead-letter-desk.js';
export { RefusalLog, type Refusal, type RefusalSummary } from './ingest/refusal-log.js';
export { AdmissionRate, AdmissionRateLimiter } from './ingest/rate-limit.js';
export { createLogger, quietLogger, parseLogLevel, securitySink, LOG_LEVELS, type Logger, type LogLevel, type LoggerOptions } from './log/logger.js';
export { logRequestEvent, stageDurations, REQUEST_EVENTS, type RequestEvent, type RequestEventFields } from './log/request-events.js';
export { EntitlementPolicy, Entitlements, CanaryRollback, readEntitlementsFile, type EntitlementsInput, type EntitledRanges, type CanaryEntry } from './ingest/entitlements.js';
export { Worker, type WorkerDeps, type WorkerSettings, type WorkerState, type AlgorithmExecutor } from './worker/worker.js';
export { WorkerPool } from './worker/worker-pool.js';
export { PlatformMetrics, type PlatformGaugeSource } from './metrics/metrics.js';
export { MetricHistory, HistoryOptions, percentilesOf, type HistoryGauges, type HistoryPoint, type HistorySnapshot, type Percentiles } from './metrics/history.js';
export { OpsHttpServer, type HttpRoutes, type HttpSecurity } from './http/http-server.js';
export { OpsAuth, loadOrCreateOpsToken, SESSION_COOKIE, CSRF_HEADER } from './http/ops-auth.js';
export { DeviceDirectory, type DeviceRecord } from './devices/device-directory.js';
export { MqttResultPublisher, type MqttPublisherOptions } from './results/mqtt-result-publisher.js';
export type { ResultPublisher } from './results/result-publisher.js';
export { createS3Client, fetchInput, parseS3Uri, type S3Settings } from './storage/s3.js';
export { s3InputSource, type FetchOptions, type InputSource } from './storage/input-source.js';
export { LocalStoreInputSource } from './embedded/local-input-source.js';
export { ClusterConfig, parseClusterConfig, type ClusterConfigInput } from './cluster/cluster-config.js';
export { IngestRole, type IngestRoleStatus } from './cluster/ingest-role.js';
export { WorkerRole, type WorkerRoleStatus, type RoleDeps } from './cluster/worker-role.js';
export { MqttIngestService, type MqttIngestOptions, type MqttIngestDeps, type MqttIngestState } from './cluster/mqtt-ingest.js';
export { NatsCaptureIngestService, provisionCapture, subjectToTopic, CAPTURE_REQUESTS_SUBJECT, type NatsCaptureIngestOptions, type NatsCaptureIngestDeps, type NatsCaptureIngestState } from './cluster/nats-capture-ingest.js';
export { openSharedStores, ledgerKeyFile, sqliteLedgerPath, type SharedStores, type QueueFactory } from './cluster/stores.js';
export { registryExecutor } from './cluster/registry-executor.js';
export { RoleLifecycle, runCleanups, within, type RoleState } from './cluster/role-lifecycle.js';
export {
  writeMosquittoFiles,
  renderMosquittoAcl,
  renderMosquittoConf,
  renderPasswordFile,
  mosquittoPasswordHash,
  brokerServiceUsername,
  brokerServicePassword,
  brokerServiceCredentials,
  osUser,
  blockedFolderFor,
  isLoopback,
  type MosquittoTlsFiles,
  type BrokerServiceRole,
  type MosquittoFiles,
  type MosquittoFilesOptions,
} from './cluster/mosquitto-files.js';
export { renderDynsecConfig, bindDevicesOnBroker, brokerAdminPassword, BROKER_ADMIN_USERNAME, DEFAULT_DYNSEC_PLUGIN, type BrokerAdminConnection } from './cluster/mosquitto-dynsec.js';
export { readConfigFile } from './cluster/config-file.js';
export { NatsWorkQueue, NatsWorkQueueOptions, compileNatsWorkQueueOptions, type NatsWorkQueueConfig, NatsAuth, natsConnectAuth, natsConnectError, readNatsAuth } from './queue/index.js';
export { SqsWorkQueue, SqsWorkQueueOptions, compileSqsWorkQueueOptions, type SqsWorkQueueConfig } from './queue/index.js';
export {
  Autoscaler,
  AutoscaleOptions,
  KedaExternalScaler,
  KEDA_SCALER_DEFAULTS,
  KubernetesDeploymentTarget,
  WorkerPoolTarget,
  embeddedSignalSource,
  ledgerSignalSource,
  serviceTotals,
  startEmbeddedAutoscaler,
  type AutoscaleInput,
  type AutoscalerDecision,
  type AutoscalerDeps,
  type AutoscalerSettings,
  type AutoscalerState,
  type EmbeddedParts,
  type KedaScalerOptions,
  type KubernetesTargetOptions,
  type LedgerSignalDeps,
  type PlatformSample,
  type Replicas,
  type ScaleTarget,
  type SignalSource,
} from './autoscaler/index.js';
export { NatsRequestLedger, NatsRequestLedgerOptions } from './cluster/nats-ledger.js';
export { serveDashboard, resultRow, latencyFromResults, type DashboardData, type StageLatency, type ResultRow } from './http/dashboard-api.js';
export { readRequestView, type RequestView } from './http/request-view.js';
export { loadChartAssets, type ChartAssets } from './http/chart-assets.js';
export { HISTORY_CHARTS } from './http/dashboard-history-script.js';
export { StatusSubscriber, startFleetStatus, type StatusSubscriberOptions } from './cluster/status-subscriber.js';
export { AutoscalerRole, type AutoscalerRoleStatus } from './cluster/autoscaler-role.js';
export { DashboardRole, type DashboardRoleStatus } from './cluster/dashboard-role.js';
export { loadMqttTls, type MqttTls } from './cluster/mqtt-tls.js';
export { loadRoleAlgorithms, artifactStoreClient, type RoleAlgorithms } from './cluster/role-algorithms.js';
export { ShadowRunner, type ShadowRunnerDeps } from './worker/shadow-runner.js';
export { initPki, issueCertificate, revokeCertificates, refreshCrl, listCertificates, certificateName, issuedFiles, pkiPaths, type PkiPaths, type IssueRequest, type IssuedCertificate } from './pki/pki.js';
export { deviceFromCommonName, type BrokerTlsOptions } from './embedded/broker-tls.js';
export { CanaryGuard, type CanaryGuardOptions, type WithdrawalStore } from './ingest/canary-guard.js';
export { CanaryWithdrawal, WITHDRAWAL_FORMAT, judgeCanary, type CanaryBounds, type CanaryVerdict } from './algorithms/canary-judge.js';
