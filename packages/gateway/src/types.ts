import type { S3Client } from '@aws-sdk/client-s3';
import type { ArteriaError, ConfigV1, PartialResultV1 } from '@arteria/protocol';
import type { OriginalIdentity } from '@arteria/deid';
import type { LifecycleState } from '@arteria/ports';
import type { GatewayLogger } from './log.js';
import type { EntryState, OutboxResult } from './outbox/outbox-entry.js';
import type { UploadProgress } from './upload/upload.js';

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

/** How a run sent while it is acquired is cut and when it is over (sendFollow, openFrameSource). */
export interface StreamOptions extends SendOptions {
  /** Frames per segment (default 10); frames that waited 250 ms for their segment to fill go up anyway. */
  framesPerSegment?: number;
  /**
   * How long the source may stop growing (no new bytes, no new frames) before the run is
   * over (default 10 000 ms): RUN_INCOMPLETE, or with `endWhenStable` the run ends with
   * the whole frames it has. A file whose Pixel Data is complete ends at once.
   */
  stableAfterMs?: number;
  /** The stability time ends the run with the frames it has instead of failing it (a modality whose header plans more frames than it acquires). */
  endWhenStable?: boolean;
  /**
   * Frame sources only: at most one fsync of the run's spool per this many ms (default 100);
   * a segment's worth of frames and the end are synced at once. A push resolves once its
   * frames are synced, so within about this long.
   */
  frameSyncMs?: number;
  /** Called with each partial result of this run (once per seq). */
  onPartial?: (partial: PartialResultV1) => void;
  /** The gateway owns the followed file (a link it made) and removes it when the run finishes. */
  ownSource?: boolean;
  /** Called once the run is in the outbox (or joined the entry of the same run on its way), before its result is awaited. */
  onAccepted?: (entry: { entryId: string; sourcePath: string }) => void;
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
  /** An event the algorithm is already certain of, while a segmented run is still being sent (once per seq). */
  partial: { entryId: string; partial: PartialResultV1 };
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
