import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ArteriaError, TraceContext } from '@arteria/protocol';
import { UPLOAD_JOURNAL_SCHEMA, UploadJournal } from './upload-journal.js';

/**
 * `pending` (to upload) → `uploaded` (request built, to publish) → `published` (PUBACK
 * seen, waiting for the result) → `done`. `failed` and `cancelled` end an entry that can
 * never complete (source gone) or that its sender withdrew.
 */
export const ENTRY_STATES = ['pending', 'uploaded', 'published', 'done', 'failed', 'cancelled'] as const;
export type EntryState = (typeof ENTRY_STATES)[number];
const LIVE_STATES = `('pending', 'uploaded', 'published')`;
const FINISHED_STATES = `('done', 'failed', 'cancelled')`;

export interface NewEntry {
  id: string;
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

interface Row {
  seq: number;
  id: string;
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

const SCHEMA = `
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

function toEntry(row: Row): OutboxEntry {
  return {
    seq: row.seq,
    id: row.id,
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
    return undefined; // written by this class as JSON; a damaged value only costs the trace
  }
}

/** Outboxes written before a column existed get it (SQLite adds columns in place). */
function addMissingColumns(db: Database.Database): void {
  const columns = new Set((db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[]).map((c) => c.name));
  if (!columns.has('trace_json')) db.exec('ALTER TABLE outbox ADD COLUMN trace_json TEXT');
}

export interface OutboxOptions {
  maxEntries: number;
  keepFinishedEntries: number;
}

export type OutboxCounts = Record<EntryState, number>;

/**
 * The gateway's durable memory of runs not yet answered (SQLite, WAL, synchronous FULL:
 * an entry that send() accepted survives a power cut). Synchronous by design: every
 * state change is committed before the gateway acts on it.
 */
export class Outbox {
  readonly #db: Database.Database;
  readonly #options: OutboxOptions;
  /** Multipart uploads in progress (upload id, confirmed parts), in the same database. */
  readonly uploads: UploadJournal;

  readonly #partsDb: Database.Database;

  private constructor(db: Database.Database, partsDb: Database.Database, options: OutboxOptions) {
    this.#db = db;
    this.#partsDb = partsDb;
    this.#options = options;
    this.uploads = new UploadJournal(db, partsDb);
  }

  static open(path: string, options: OutboxOptions): Outbox {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
      addMissingColumns(db);
      db.exec(UPLOAD_JOURNAL_SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }
    const partsDb = new Database(path);
    partsDb.pragma('synchronous = NORMAL'); // see UploadJournal
    partsDb.pragma('busy_timeout = 5000');
    return new Outbox(db, partsDb, options);
  }

  /** OUTBOX_FULL when maxEntries runs are already waiting: new runs are refused, old ones never dropped. */
  assertRoom(): void {
    const live = this.liveCount();
    if (live >= this.#options.maxEntries) {
      throw new ArteriaError(
        'OUTBOX_FULL',
        `the outbox holds ${live} runs not yet answered (maxOutboxEntries ${this.#options.maxEntries}); the run was not accepted`,
      );
    }
  }

  /** Records a new run; OUTBOX_FULL when maxEntries runs are already waiting. */
  add(entry: NewEntry, now: number): OutboxEntry {
    const insert = this.#db.transaction(() => {
      this.assertRoom();
      this.#db
        .prepare(
          `INSERT INTO outbox (id, source_path, spooled, algorithm, instance_uid, object_key, priority, deadline, acquired_at,
             trace_json, state, next_attempt_at, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
        )
        .run(entry.id, entry.sourcePath, entry.spooled ? 1 : 0, entry.algorithm, entry.instanceUid, entry.objectKey, entry.priority,
          entry.deadline ?? null, entry.acquiredAt, entry.trace === undefined ? null : JSON.stringify(entry.trace), now, now, now);
    });
    insert.immediate();
    const added = this.get(entry.id);
    if (added === undefined) throw new ArteriaError('INTERNAL', `outbox entry ${entry.id} vanished after insert`);
    return added;
  }

  get(id: string): OutboxEntry | undefined {
    const row = this.#db.prepare('SELECT * FROM outbox WHERE id = ?').get(id) as Row | undefined;
    return row && toEntry(row);
  }

  /** A run of this file to this algorithm that is still on its way, if any. */
  findLive(sourcePath: string, algorithm: string): OutboxEntry | undefined {
    const row = this.#db
      .prepare(`SELECT * FROM outbox WHERE source_path = ? AND algorithm = ? AND state IN ${LIVE_STATES} ORDER BY seq LIMIT 1`)
      .get(sourcePath, algorithm) as Row | undefined;
    return row && toEntry(row);
  }

  /** A live entry for this (de-identified) instance and algorithm: the same run sent again. */
  findLiveByInstance(instanceUid: string, algorithm: string): OutboxEntry | undefined {
    const row = this.#db
      .prepare(`SELECT * FROM outbox WHERE instance_uid = ? AND algorithm = ? AND state IN ${LIVE_STATES} ORDER BY seq LIMIT 1`)
      .get(instanceUid, algorithm) as Row | undefined;
    return row && toEntry(row);
  }

  /** Newest entry with this request id, in any state. */
  findByRequestId(requestId: string): OutboxEntry | undefined {
    const row = this.#db.prepare('SELECT * FROM outbox WHERE request_id = ? ORDER BY seq DESC LIMIT 1').get(requestId) as Row | undefined;
    return row && toEntry(row);
  }

  /** Oldest pending entry due for an upload attempt, skipping those already being uploaded. */
  nextPending(now: number, busy: ReadonlySet<string>): OutboxEntry | undefined {
    const rows = this.#db
      .prepare(`SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY CASE priority WHEN 'clinical' THEN 0 ELSE 1 END, seq`)
      .iterate(now) as IterableIterator<Row>;
    for (const row of rows) {
      if (!busy.has(row.id)) return toEntry(row);
    }
    return undefined;
  }

  /** When the earliest pending entry becomes due; undefined when none is pending. */
  nextPendingDueAt(): number | undefined {
    const row = this.#db.prepare(`SELECT MIN(next_attempt_at) AS due FROM outbox WHERE state = 'pending'`).get() as { due: number | null };
    return row.due ?? undefined;
  }

  /** Entries whose request is built and not yet answered, oldest first. */
  awaitingResult(): OutboxEntry[] {
    const rows = this.#db.prepare(`SELECT * FROM outbox WHERE state IN ('uploaded', 'published') ORDER BY seq`).all() as Row[];
    return rows.map(toEntry);
  }

  /** The upload is complete: the entry moves on and its multipart journal goes, in one transaction. */
  markUploaded(id: string, fields: { uri: string; size: number; sha256: string; requestId: string; requestJson: string }, now: number): void {
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `UPDATE outbox SET state = 'uploaded', uri = ?, size = ?, sha256 = ?, request_id = ?, request_json = ?, last_error = NULL, updated_at = ?
           WHERE id = ? AND state = 'pending'`,
        )
        .run(fields.uri, fields.size, fields.sha256, fields.requestId, fields.requestJson, now, id);
      this.uploads.forget(id);
    })();
  }

  /** Records a publish (the broker acknowledged it); the first one moves uploaded → published. */
  markPublished(id: string, at: number): void {
    this.#db
      .prepare(
        `UPDATE outbox SET state = CASE WHEN state = 'uploaded' THEN 'published' ELSE state END,
           publishes = publishes + 1, first_published_at = COALESCE(first_published_at, ?), last_published_at = ?, updated_at = ?
         WHERE id = ? AND state IN ('uploaded', 'published')`,
      )
      .run(at, at, at, id);
  }

  /** Stamps the first publish time before the publish goes out, so every copy carries the same timings.published. */
  stampFirstPublish(id: string, at: number): number {
    this.#db.prepare('UPDATE outbox SET first_published_at = COALESCE(first_published_at, ?) WHERE id = ?').run(at, id);
    return this.get(id)?.firstPublishedAt ?? at;
  }

  /** Makes every pending entry due now (a restart is a fresh chance; the backoff was for the old process). */
  resetBackoff(now: number): void {
    this.#db.prepare(`UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending' AND next_attempt_at > ?`).run(now, now);
  }

  markAttemptFailed(id: string, error: string, nextAttemptAt: number, now: number): void {
    this.#db
      .prepare(`UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'`)
      .run(error, nextAttemptAt, now, id);
  }

  /** Completes every entry still waiting for this request id; returns the entries it completed. */
  complete(requestId: string, resultJson: string, now: number): OutboxEntry[] {
    const done = this.#db.transaction(() => {
      const rows = this.#db
        .prepare(`SELECT * FROM outbox WHERE request_id = ? AND state IN ('uploaded', 'published') ORDER BY seq`)
        .all(requestId) as Row[];
      this.#db
        .prepare(`UPDATE outbox SET state = 'done', result_json = ?, updated_at = ? WHERE request_id = ? AND state IN ('uploaded', 'published')`)
        .run(resultJson, now, requestId);
      return rows.map((row) => ({ ...toEntry(row), state: 'done' as const }));
    });
    const entries = done.immediate();
    if (entries.length > 0) this.#prune();
    return entries;
  }

  /** Ends a live entry as failed or cancelled; false when it was no longer live. */
  finish(id: string, state: 'failed' | 'cancelled', reason: string, now: number): boolean {
    const changed = this.#db
      .prepare(`UPDATE outbox SET state = ?, last_error = ?, updated_at = ? WHERE id = ? AND state IN ${LIVE_STATES}`)
      .run(state, reason, now, id).changes;
    if (changed > 0) this.#prune();
    return changed > 0;
  }

  liveCount(): number {
    return (this.#db.prepare(`SELECT COUNT(*) AS n FROM outbox WHERE state IN ${LIVE_STATES}`).get() as { n: number }).n;
  }

  counts(): OutboxCounts {
    const counts: OutboxCounts = { pending: 0, uploaded: 0, published: 0, done: 0, failed: 0, cancelled: 0 };
    const rows = this.#db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all() as { state: EntryState; n: number }[];
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  close(): void {
    if (this.#partsDb.open) this.#partsDb.close();
    if (this.#db.open) this.#db.close();
  }

  #prune(): void {
    this.#db
      .prepare(
        `DELETE FROM outbox WHERE state IN ${FINISHED_STATES} AND seq NOT IN
           (SELECT seq FROM outbox WHERE state IN ${FINISHED_STATES} ORDER BY seq DESC LIMIT ?)`,
      )
      .run(this.#options.keepFinishedEntries);
  }
}
