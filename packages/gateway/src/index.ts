export { GatewayOptions, parseGatewayOptions, MIN_PART_SIZE_BYTES, type GatewayOptionsInput, type GatewayConfig } from './config/config.js';
export { createS3Client, type S3ConnectionOptions } from './upload/s3.js';
export { uploadRun, uploadToStore, multipartEtag, runObjectKey, type UploadTarget, type UploadOptions, type UploadProgress, type UploadedObject } from './upload/upload.js';
export { s3PartStore, type PartStore, type StoredPart, type OpenUpload } from './upload/part-store.js';
export { GrantedUrls, type UrlNeed, type UrlSource } from './upload/granted-urls.js';
export { UploadJournal, memoryJournal, type UploadJournalPort, type UploadRecord } from './outbox/upload-journal.js';
export { UploadSweeper, type UploadSweeperOptions } from './upload/upload-sweeper.js';
export { Outbox, ENTRY_STATES, NEXT_STATES, IllegalTransitionError, type EntryKind, type EntryState, type LiveState, type NewEntry, type OutboxEntry, type OutboxResult, type OutboxOptions, type OutboxCounts, type OutboxTransition, type TransitionListener } from './outbox/outbox.js';
export { DeviceConnection, type ConnectionOptions, type ConnectionEvents, type ConnectionState, type InboundTopic, type MessageHandler } from './connection/connection.js';
export { Gateway } from './gateway.js';
export { FrameSource } from './segmented/frame-source.js';
export { DEFAULT_FRAMES_PER_SEGMENT, DEFAULT_STABLE_AFTER_MS } from './segmented/segmented-intake.js';
export { readGrowingHeader, readFileStart, type GrowingRunHeader } from './segmented/run-header.js';
export { syncFolder } from './outbox/spool.js';
export { LocalStatusV1, runningGateway } from './local-status.js';
export type {
  GatewayState,
  GatewayResult,
  RunSource,
  SendOptions,
  StreamOptions,
  GatewayEvents,
  GatewayStats,
  GatewayDependencies,
} from './types.js';
export { FolderWatcher, type FolderWatcherOptions } from './runs/watch.js';
export { listFolderFiles, looksLikeRun, isPart10, MAX_FOLDER_DEPTH, type FolderFilesOptions } from './runs/folder-files.js';
export { writeSeriesRun, groupFolderRuns, singleFrameSeriesOf, seriesFolderName, type FolderRun } from './runs/series-run.js';
export { TypedEmitter } from './events.js';
export { stderrLogger, errorFields, createGatewayLogger, pinoGatewayLogger, gatewayLogLevel, GATEWAY_LOG_LEVELS, type GatewayLogger, type GatewayLogLevel } from './log.js';
export { GATEWAY_VERSION } from './version.js';
export { deidentifyFile } from '@arteria/deid';
export { deidentify, type DeidentifiedRun, type DeidentifiedUids, type OriginalIdentity } from '@arteria/deid';
export { DeidentificationKey } from '@arteria/deid';
export { DeidentificationProfile, PrivateTagAllowance, MaskRegion, type DeidentificationProfileInput } from '@arteria/deid';
export { ReidentificationStore, type ReidentificationRecord } from '@arteria/deid';
export { FleetConfigManager, validateFleetConfig, type ActiveConfig, type FleetConfigHooks, type FleetConfigPolicy } from './config/config-manager.js';
export { RouteRule, compileRoutes, type RunAttributes } from './config/routing.js';
export { BandwidthLimiter } from './upload/bandwidth.js';
export { ACCEPTED_STORAGE_CLASSES, ACCEPTED_TRANSFER_SYNTAXES, ENCAPSULATED_TRANSFER_SYNTAXES } from '@arteria/dicom';
export { MqttTlsOptions, loadMqttTls, type MqttTlsMaterial } from './config/tls.js';
export { ProxyOptions, proxyUrlFor, proxyAgentFor, bypassesProxy, describeProxy, type Environment } from './config/proxy.js';
export { ReconnectBackoff, reconnectDelayMs, backoffCeilingMs, type BackoffSettings } from './connection/backoff.js';
