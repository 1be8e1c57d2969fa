import type { RequestV1, ResultV1 } from '@arteria/protocol';

/**
 * The request ledger: the platform's durable idempotency and provenance record, one entry
 * per request id, kept for as long as the operator keeps the file (a queue's dedupe window
 * is not forever on every engine). Ingest records a request before it enqueues it; the
 * worker records the result it published before it acks the task.
 */
export interface AcceptedRequest {
  requestId: string;
  tenant: string;
  device: string;
  /** Algorithm spec as requested (`name@range`). */
  algorithm: string;
  /** Epoch ms. */
  acceptedAt: number;
  request: RequestV1;
}

/**
 * An accepted entry always carries its request; a completed one always carries its
 * result. A result can be recorded before its acceptance (ingest enqueues first, and a
 * crash may fall between its enqueue and its record); such an entry has no request until
 * the acceptance is recorded, which the device's resend brings.
 */
export type LedgerEntry =
  | (AcceptedRequest & { state: 'accepted'; status?: undefined; completedAt?: undefined; result?: undefined; publishedAt?: undefined; replayedAs?: undefined })
  | {
      state: 'completed';
      requestId: string;
      tenant: string;
      device: string;
      algorithm?: string;
      acceptedAt?: number;
      request?: RequestV1;
      status: ResultV1['status'];
      /** Epoch ms at which the result was recorded. */
      completedAt: number;
      /** The result as published, read back through the ResultV1 schema. */
      result: ResultV1;
      /** Epoch ms at which a worker saw the broker take the result; absent: not published yet (or not known to be). */
      publishedAt?: number;
      /** The dedupe id of the newest replay of the request's dead-lettered task (see noteReplay). */
      replayedAs?: string;
    };

export interface LedgerCounts {
  /** Every request in the ledger (completed ones included). */
  accepted: number;
  /** Requests with a recorded result: ok + rejected + failed. */
  completed: number;
  ok: number;
  rejected: number;
  failed: number;
}

/** What the ledger records beside a result, for `arteria audit show`. */
export interface ResultProvenance {
  /** The worker that produced the result (host/process/slot). */
  worker?: string;
}

/** What stands in the ledger after recordResult: this call's result, or the first one recorded. */
export interface RecordedResult {
  /** True when this call recorded its result; false when another was recorded first and stands. */
  recorded: boolean;
  /** The standing result, as get() serves it (with `recordHash`). */
  result: ResultV1;
  /** Epoch ms at which the standing result was recorded. */
  completedAt: number;
  /** Epoch ms at which the standing result was noted as published; absent: not (known to be) published. */
  publishedAt?: number;
}

export interface RequestLedger {
  /**
   * A completed entry's result carries `recordHash`. Throws LEDGER_TAMPERED when the entry
   * does not match the ledger's hash chain: a tampered result is never served.
   */
  get(requestId: string): Promise<LedgerEntry | undefined>;
  /**
   * 'existing' when the request was already accepted: a resend, nothing changes. 'new'
   * otherwise, also when only its result was recorded so far (the request is added).
   */
  recordAccepted(entry: AcceptedRequest): Promise<'new' | 'existing'>;
  /**
   * Completes a request. The first result recorded stands: a later one (a redelivered
   * task run again) is ignored. Each recorded entry is appended to the hash chain.
   * Returns the result that stands, so the caller publishes what the ledger holds without
   * reading it back (a standing result recorded by another call is checked like get()).
   */
  recordResult(result: ResultV1, provenance?: ResultProvenance): Promise<RecordedResult>;
  /**
   * Notes that the recorded result was published (the broker acknowledged it), so a later
   * delivery of the same task acknowledges without publishing it again. Idempotent: the
   * first time stands. Delivery state, not provenance: outside the hash chain.
   */
  markPublished(requestId: string, at: number): Promise<void>;
  /**
   * Notes, before it is queued, that a dead letter of this request is queued again under
   * `dedupeId` (a replay). While that task is pending its worker still publishes the
   * request's result, so a device's resend is not answered from the ledger meanwhile.
   * The newest note stands. Delivery state, not provenance: outside the hash chain.
   */
  noteReplay(requestId: string, dedupeId: string): Promise<void>;
  counts(): Promise<LedgerCounts>;
  /** Newest first (by acceptance time, else completion time). */
  recent(limit: number): Promise<LedgerEntry[]>;
  /** Idempotent. */
  close(): Promise<void>;
}
