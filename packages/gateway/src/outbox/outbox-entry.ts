import { TraceContext, type ResultV1, type Timings } from '@arteria/protocol';

/**
 * `pending` (to upload) → `uploaded` (request built, to publish) → `published` (PUBACK
 * seen, waiting for the result) → `done`. `failed` and `cancelled` end an entry that can
 * never complete (source gone) or that its sender withdrew. A segmented run stays `pending`
 * while it streams (its steps are in segment-journal.ts), is `uploaded` once its run-end is
 * built, and may go `pending → done` when the platform ends it before its last segment.
 */
export const ENTRY_STATES = ['pending', 'uploaded', 'published', 'done', 'failed', 'cancelled'] as const;
export type EntryState = (typeof ENTRY_STATES)[number];
/** States of an entry still on its way. */
export type LiveState = 'pending' | 'uploaded' | 'published';
export const LIVE_STATES: readonly LiveState[] = ['pending', 'uploaded', 'published'];
export const FINISHED_STATES: readonly EntryState[] = ['done', 'failed', 'cancelled'];

/** A result as the device sees it: the platform's ResultV1 plus the moment it arrived. */
export type OutboxResult = ResultV1 & { timings: Timings & { received: number } };

/** `file`: a whole file, uploaded as one object. `segmented`: a run sent while it is acquired (segment-journal.ts). */
export type EntryKind = 'file' | 'segmented';

export interface NewEntry {
  id: string;
  /** Default `file`. */
  kind?: EntryKind;
  sourcePath: string;
  /** True when the gateway owns the source file (a spooled copy) and deletes it when finished. */
  spooled: boolean;
  algorithm: string;
  instanceUid: string;
  objectKey: string;
  priority: 'clinical' | 'bulk';
  deadline: number | undefined;
  acquiredAt: number;
  /** The run's trace (the gateway's span for it), sent with every copy of its request. */
  trace?: TraceContext | undefined;
}

export interface OutboxEntry extends NewEntry {
  kind: EntryKind;
  seq: number;
  state: EntryState;
  uri: string | undefined;
  size: number | undefined;
  sha256: string | undefined;
  requestId: string | undefined;
  /** The RequestV1 as JSON, without timings.published (stamped at each publish). */
  requestJson: string | undefined;
  attempts: number;
  publishes: number;
  lastError: string | undefined;
  nextAttemptAt: number;
  firstPublishedAt: number | undefined;
  lastPublishedAt: number | undefined;
  createdAt: number;
  updatedAt: number;
}

export interface Row {
  seq: number;
  id: string;
  kind: string | null;
  source_path: string;
  spooled: number;
  algorithm: string;
  instance_uid: string;
  object_key: string;
  priority: string;
  deadline: number | null;
  acquired_at: number;
  state: string;
  uri: string | null;
  size: number | null;
  sha256: string | null;
  request_id: string | null;
  request_json: string | null;
  trace_json: string | null;
  attempts: number;
  publishes: number;
  last_error: string | null;
  next_attempt_at: number;
  first_published_at: number | null;
  last_published_at: number | null;
  created_at: number;
  updated_at: number;
}

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  source_path TEXT NOT NULL,
  spooled INTEGER NOT NULL,
  algorithm TEXT NOT NULL,
  instance_uid TEXT NOT NULL,
  object_key TEXT NOT NULL,
  priority TEXT NOT NULL,
  deadline REAL,
  acquired_at REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'uploaded', 'published', 'done', 'failed', 'cancelled')),
  uri TEXT,
  size INTEGER,
  sha256 TEXT,
  request_id TEXT,
  request_json TEXT,
  result_json TEXT,
  trace_json TEXT,
  kind TEXT NOT NULL DEFAULT 'file',
  attempts INTEGER NOT NULL DEFAULT 0,
  publishes INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  next_attempt_at REAL NOT NULL,
  first_published_at REAL,
  last_published_at REAL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
CREATE INDEX IF NOT EXISTS outbox_request ON outbox (request_id);
CREATE INDEX IF NOT EXISTS outbox_source ON outbox (source_path);
`;

export function toEntry(row: Row): OutboxEntry {
  return {
    seq: row.seq,
    id: row.id,
    kind: row.kind === 'segmented' ? 'segmented' : 'file',
    sourcePath: row.source_path,
    spooled: row.spooled === 1,
    algorithm: row.algorithm,
    instanceUid: row.instance_uid,
    objectKey: row.object_key,
    priority: row.priority === 'bulk' ? 'bulk' : 'clinical',
    deadline: row.deadline ?? undefined,
    acquiredAt: row.acquired_at,
    trace: traceFrom(row.trace_json),
    state: row.state as EntryState,
    uri: row.uri ?? undefined,
    size: row.size ?? undefined,
    sha256: row.sha256 ?? undefined,
    requestId: row.request_id ?? undefined,
    requestJson: row.request_json ?? undefined,
    attempts: row.attempts,
    publishes: row.publishes,
    lastError: row.last_error ?? undefined,
    nextAttemptAt: row.next_attempt_at,
    firstPublishedAt: row.first_published_at ?? undefined,
    lastPublishedAt: row.last_published_at ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A stored trace context; one that no longer parses is dropped (the run goes on untraced). */
function traceFrom(json: string | null): TraceContext | undefined {
  if (json === null) return undefined;
  try {
    const parsed = TraceContext.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // written by the outbox as JSON; a damaged value only costs the trace
  }
}
