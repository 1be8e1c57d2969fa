import type { S3Client } from '@aws-sdk/client-s3';
import type { ArteriaError, ConfigV1 } from '@arteria/protocol';
import type { OriginalIdentity } from '@arteria/deid';
import type { LifecycleState } from '@arteria/ports';
import type { GatewayLogger } from './log.js';
import type { EntryState, OutboxResult } from './outbox-entry.js';
import type { UploadProgress } from './upload.js';

export type GatewayState = LifecycleState;

/** A result as the device sees it: the platform's ResultV1 plus the moment it arrived. */
export type GatewayResult = OutboxResult;

/** A run to send: a file path, or bytes (kept in the outbox's spool folder until answered). */
export type RunSource = string | { bytes: Uint8Array; name: string };

export interface SendOptions {
  /** `name@range`; defaults to the fleet config's first algorithm, else the `algorithm` option. */
  algorithm?: string;
  priority?: 'clinical' | 'bulk';
  /** Epoch ms after which the answer is no longer useful. */
  deadline?: number;
  /** Aborting withdraws the run (unless another caller waits for it) and rejects with the reason. */
  signal?: AbortSignal;
  /**
   * The caller's W3C trace context: the run's span becomes a child of it, and the request
   * carries the run's trace to the platform. Without it the gateway starts a trace when
   * tracing is on, and sends none when it is off. A malformed one is ignored (W3C).
   */
  trace?: { traceparent: string; tracestate?: string };
}

/** Listen before start(): resumed runs and the retained fleet config can arrive while it runs. */
export interface GatewayEvents {
  /** Every result, including those of runs resumed from the outbox that no send() waits for. */
  /** `original`: the study the run came from, re-identified on-site (absent when de-identification is off). */
  result: { entryId: string; sourcePath: string; result: GatewayResult; original?: OriginalIdentity };
  progress: { entryId: string } & UploadProgress;
  entry: { entryId: string; state: EntryState; requestId?: string };
  /** Problems worth reporting that the gateway handles itself (retried uploads, failed publishes). */
  error: { entryId?: string; error: ArteriaError };
  connection: { state: 'ready' | 'down' };
  config: { config: ConfigV1 };
}

export interface GatewayStats {
  state: GatewayState;
  connected: boolean;
  /** Runs accepted by send() since start. */
  sent: number;
  /** Requests published (acknowledged by the broker), resends included. */
  published: number;
  /** Results received since start. */
  done: number;
  /** Entries that ended without a result since start (source gone). */
  failed: number;
  /** Outbox entries not yet answered (resumed ones included). */
  pending: number;
}

export interface GatewayDependencies {
  logger?: GatewayLogger;
  /** An S3 client to use instead of one built from the options (the gateway then does not destroy it). */
  s3Client?: S3Client;
  /** Where HTTPS_PROXY, HTTP_PROXY, NO_PROXY and OTEL_EXPORTER_OTLP_ENDPOINT are read (default: the process's environment). */
  env?: Readonly<Record<string, string | undefined>>;
}
