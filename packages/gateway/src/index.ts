export { GatewayOptions, parseGatewayOptions, MIN_PART_SIZE_BYTES, type GatewayOptionsInput, type GatewayConfig } from './config.js';
export { createS3Client, type S3ConnectionOptions } from './s3.js';
export { uploadRun, runObjectKey, type UploadTarget, type UploadOptions, type UploadProgress, type UploadedObject } from './upload.js';
export { Outbox, ENTRY_STATES, type EntryState, type NewEntry, type OutboxEntry, type OutboxOptions, type OutboxCounts } from './outbox.js';
export { DeviceConnection, type ConnectionOptions, type ConnectionHandlers, type ConnectionState } from './connection.js';
export { Gateway } from './gateway.js';
export type {
  GatewayState,
  GatewayResult,
  RunSource,
  SendOptions,
  GatewayEvents,
  GatewayStats,
  GatewayDependencies,
} from './types.js';
export { FolderWatcher, type FolderWatcherOptions } from './watch.js';
export { TypedEmitter } from './events.js';
export { stderrLogger, type GatewayLogger } from './log.js';
export { GATEWAY_VERSION } from './version.js';
