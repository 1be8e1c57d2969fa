import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ArteriaError } from '@arteria/protocol';
import { UPLOAD_JOURNAL_SCHEMA, UploadJournal } from './upload-journal.js';
import { SCHEMA, toEntry, type EntryState, type LiveState, type NewEntry, type OutboxEntry, type OutboxResult, type Row } from './outbox-entry.js';
import { SEGMENT_JOURNAL_SCHEMA, SegmentJournal, migrateSegmentJournal, type NewSegmentedRun } from './segment-journal.js';
import { ABANDON_JOURNAL_SCHEMA, AbandonJournal } from './abandon-journal.js';
import { IllegalTransitionError, TransitionStream, assertTransition, type OutboxTransition, type TransitionListener } from './outbox-transitions.js';

export { ENTRY_STATES, type EntryKind, type EntryState, type LiveState, type NewEntry, type OutboxEntry, type OutboxResult } from './outbox-entry.js';
export { NEXT_STATES, IllegalTransitionError, type OutboxTransition, type TransitionListener } from './outbox-transitions.js';

const LIVE_STATES = `('pending', 'uploaded', 'published')`;
const FINISHED_STATES = `('done', 'failed', 'cancelled')`;

/** Outboxes written before a column existed get it (SQLite adds columns in place). */
function addMissingColumns(db: Database.Database): void {
  const columns = new Set((db.prepare('PRAGMA table_info(outbox)').all() as { name: string }[]).map((c) => c.name));
  if (!columns.has('trace_json')) db.exec('ALTER TABLE outbox ADD COLUMN trace_json TEXT');
  if (!columns.has('kind')) db.exec("ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'file'");
}

export interface OutboxOptions {
  maxEntries: number;
  keepFinishedEntries: number;
  /** Where a transition listener's error goes (default: thrown to the transition's caller once every listener ran). */
  onListenerError?: (err: unknown, transition: OutboxTransition) => void;
}

export type OutboxCounts = Record<EntryState, number>;

/**
 * The gateway's durable memory of runs not yet answered (SQLite, WAL, synchronous FULL:
 * an entry that send() accepted survives a power cut), and the source of their state
 * changes: every transition (outbox-transitions.ts) is committed, then delivered to the
 * subscribers, which act on the ones they own. After a restart the parts find each entry
 * in the state it last committed and go on from there.
 */
export class Outbox {
  readonly #db: Database.Database;
  readonly #options: OutboxOptions;
  readonly #transitions: TransitionStream;
  /** Multipart uploads in progress (upload id, confirmed parts), in the same database. */
  readonly uploads: UploadJournal;
  /** The steps of segmented runs (header, run-open, segments, partial results), in the same database. */
  readonly segments: SegmentJournal;
  /** Segmented runs given up after their run-open may have reached the platform: to abandon there (RunAbandonV1). */
  readonly abandons: AbandonJournal;

  readonly #partsDb: Database.Database;

  private constructor(db: Database.Database, partsDb: Database.Database, options: OutboxOptions) {
    this.#db = db;
    this.#partsDb = partsDb;
    this.#options = options;
    this.#transitions = new TransitionStream(options.onListenerError);
    this.uploads = new UploadJournal(db, partsDb);
    this.segments = new SegmentJournal(db, partsDb);
    this.abandons = new AbandonJournal(db);
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
      db.exec(SEGMENT_JOURNAL_SCHEMA);
      migrateSegmentJournal(db);
      db.exec(ABANDON_JOURNAL_SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }
    const partsDb = new Database(path);
    partsDb.pragma('synchronous = NORMAL'); // see UploadJournal
    partsDb.pragma('busy_timeout = 5000');
    return new Outbox(db, partsDb, options);
  }

  /** Follows every committed transition from now on; returns the function that stops it. */
  subscribe(listener: TransitionListener): () => void {
    return this.#transitions.subscribe(listener);
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

  /**
   * Records a new run; OUTBOX_FULL when maxEntries runs are already waiting. A segmented
   * run (`segmented` given) is recorded with its request id (the run id, known from its
   * header) and its journal row in the same transaction.
   */
  add(entry: NewEntry, now: number, segmented?: NewSegmentedRun & { requestId: string }): OutboxEntry {
    const insert = this.#db.transaction(() => {
      this.assertRoom();
      this.#db
        .prepare(
          `INSERT INTO outbox (id, kind, source_path, spooled, algorithm, instance_uid, object_key, priority, deadline, acquired_at,
             trace_json, request_id, state, next_attempt_at, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
        )
        .run(entry.id, segmented === undefined ? 'file' : 'segmented', entry.sourcePath, entry.spooled ? 1 : 0, entry.algorithm, entry.instanceUid, entry.objectKey, entry.priority,
          entry.deadline ?? null, entry.acquiredAt, entry.trace === undefined ? null : JSON.stringify(entry.trace), segmented?.requestId ?? null, now, now, now);
      if (segmented !== undefined) this.segments.create(segmented);
    });
    insert.immediate();
    const added = this.get(entry.id);
    if (added?.state !== 'pending') throw new ArteriaError('INTERNAL', `outbox entry ${entry.id} vanished after insert`);
    this.#transitions.emit({ from: undefined, to: 'pending', entry: { ...added, state: 'pending' }, at: now });
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

  /**
   * The newest entry answered since `since` for `algorithm` whose source was at `sourcePath`,
   * or (when `instanceUid` is given) of that instance, with its result.
   */
  answeredSince(match: { sourcePath: string } | { instanceUid: string }, algorithm: string, since: number): { entry: OutboxEntry; result: OutboxResult } | undefined {
    const [column, value] = 'sourcePath' in match ? ['source_path', match.sourcePath] : ['instance_uid', match.instanceUid];
    const row = this.#db
      .prepare(`SELECT * FROM outbox WHERE ${column} = ? AND algorithm = ? AND state = 'done' AND result_json IS NOT NULL AND updated_at >= ? ORDER BY seq DESC LIMIT 1`)
      .get(value, algorithm, since) as (Row & { result_json: string }) | undefined;
    return row && { entry: toEntry(row), result: JSON.parse(row.result_json) as OutboxResult };
  }

  /** The result a done entry holds. */
  resultOf(id: string): OutboxResult | undefined {
    const row = this.#db.prepare(`SELECT result_json FROM outbox WHERE id = ? AND state = 'done'`).get(id) as { result_json: string | null } | undefined;
    return row?.result_json == null ? undefined : (JSON.parse(row.result_json) as OutboxResult);
  }

  /** Newest entry with this request id, in any state. */
  findByRequestId(requestId: string): OutboxEntry | undefined {
    const row = this.#db.prepare('SELECT * FROM outbox WHERE request_id = ? ORDER BY seq DESC LIMIT 1').get(requestId) as Row | undefined;
    return row && toEntry(row);
  }

  /** Oldest pending whole-file entry due for an upload attempt, skipping those already being uploaded. */
  nextPending(now: number, busy: ReadonlySet<string>): OutboxEntry | undefined {
    const rows = this.#db
      .prepare(`SELECT * FROM outbox WHERE state = 'pending' AND kind = 'file' AND next_attempt_at <= ? ORDER BY CASE priority WHEN 'clinical' THEN 0 ELSE 1 END, seq`)
      .iterate(now) as IterableIterator<Row>;
    for (const row of rows) {
      if (!busy.has(row.id)) return toEntry(row);
    }
    return undefined;
  }

  /** When the earliest pending entry not in `busy` (being uploaded) becomes due; undefined when there is none. */
  nextPendingDueAt(busy: ReadonlySet<string> = new Set()): number | undefined {
    const rows = this.#db.prepare(`SELECT id, next_attempt_at AS due FROM outbox WHERE state = 'pending' AND kind = 'file' ORDER BY next_attempt_at`).iterate() as IterableIterator<{ id: string; due: number }>;
    for (const row of rows) {
      if (!busy.has(row.id)) return row.due;
    }
    return undefined;
  }

  /** Segmented runs still streaming (pending), oldest first. */
  streaming(): OutboxEntry[] {
    const rows = this.#db.prepare(`SELECT * FROM outbox WHERE state = 'pending' AND kind = 'segmented' ORDER BY seq`).all() as Row[];
    return rows.map(toEntry);
  }

  /** Entries whose request is built and not yet answered, oldest first. */
  awaitingResult(): OutboxEntry[] {
    const rows = this.#db.prepare(`SELECT * FROM outbox WHERE state IN ('uploaded', 'published') ORDER BY seq`).all() as Row[];
    return rows.map(toEntry);
  }

  /** pending → uploaded: the upload is complete; the entry's request and the end of its multipart journal commit together. */
  markUploaded(id: string, fields: { uri: string; size: number; sha256: string; requestId: string; requestJson: string }, now: number): OutboxEntry {
    const entry = this.#db.transaction(() => {
      assertTransition(id, this.#stateOf(id), 'uploaded');
      this.#db
        .prepare(`UPDATE outbox SET state = 'uploaded', uri = ?, size = ?, sha256 = ?, request_id = ?, request_json = ?, last_error = NULL, updated_at = ? WHERE id = ?`)
        .run(fields.uri, fields.size, fields.sha256, fields.requestId, fields.requestJson, now, id);
      this.uploads.forget(id);
      return this.#require(id, 'uploaded');
    }).immediate();
    this.#transitions.emit({ from: 'pending', to: 'uploaded', entry, at: now });
    return entry;
  }

  /**
   * Records a publish the broker acknowledged; the first moves uploaded → published.
   * Undefined when the entry has finished meanwhile (its result overtook the PUBACK, or it
   * was withdrawn): nothing is recorded. A pending entry has no request: ILLEGAL_STATE.
   */
  markPublished(id: string, at: number): OutboxEntry | undefined {
    const changed = this.#db.transaction(() => {
      const from = this.#stateOf(id);
      if (from === 'done' || from === 'failed' || from === 'cancelled') return undefined;
      if (from !== 'uploaded' && from !== 'published') throw new IllegalTransitionError(id, from, 'published');
      this.#recordPublish(id, at);
      return { from, entry: this.#require(id, 'published') };
    }).immediate();
    if (changed?.from === 'uploaded') this.#transitions.emit({ from: 'uploaded', to: 'published', entry: changed.entry, at });
    return changed?.entry;
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

  /**
   * uploaded | published → done for every entry waiting for this result's request (and
   * pending → done for a segmented run still streaming); returns the entries it completed.
   */
  complete(result: OutboxResult, now: number): OutboxEntry[] {
    const waiting = `request_id = ? AND (state IN ('uploaded', 'published') OR (state = 'pending' AND kind = 'segmented'))`;
    const done = this.#db.transaction(() => {
      const rows = this.#db.prepare(`SELECT * FROM outbox WHERE ${waiting} ORDER BY seq`).all(result.requestId) as Row[];
      this.#db.prepare(`UPDATE outbox SET state = 'done', result_json = ?, updated_at = ? WHERE ${waiting}`).run(JSON.stringify(result), now, result.requestId);
      return rows.map((row) => ({ from: row.state as LiveState, entry: { ...toEntry(row), state: 'done' as const, updatedAt: now } }));
    }).immediate();
    if (done.length > 0) this.#prune();
    for (const { from, entry } of done) this.#transitions.emit({ from, to: 'done', entry, result, at: now });
    return done.map((d) => d.entry);
  }

  /**
   * A complete file sent in segments that the platform cannot run so (NOT_INCREMENTAL)
   * becomes a whole-file run to upload: kind `file`, `pending`, its source (a
   * de-identified copy when de-identification is on) and object key given, its request and
   * publishes forgotten, its segmented rows dropped, in one transaction. Undefined when the
   * entry is no longer a live segmented run (it finished meanwhile).
   */
  sendWhole(id: string, fields: { sourcePath: string; spooled: boolean; objectKey: string }, now: number): OutboxEntry | undefined {
    const changed = this.#db.transaction(() => {
      const row = this.#db.prepare('SELECT state, kind FROM outbox WHERE id = ?').get(id) as { state: EntryState; kind: string } | undefined;
      if (row === undefined || row.kind !== 'segmented' || !(['pending', 'uploaded', 'published'] as EntryState[]).includes(row.state)) return undefined;
      this.#db
        .prepare(
          `UPDATE outbox SET kind = 'file', state = 'pending', source_path = ?, spooled = ?, object_key = ?, uri = NULL, size = NULL, sha256 = NULL,
             request_id = NULL, request_json = NULL, attempts = 0, last_error = NULL, next_attempt_at = ?, first_published_at = NULL,
             last_published_at = NULL, updated_at = ? WHERE id = ?`,
        )
        .run(fields.sourcePath, fields.spooled ? 1 : 0, fields.objectKey, now, now, id);
      this.segments.forget(id);
      return { from: row.state as LiveState, entry: this.#require(id, 'pending') };
    }).immediate();
    if (changed !== undefined) this.#transitions.emit({ from: changed.from, to: 'pending', entry: changed.entry, wholeFile: true, at: now });
    return changed?.entry;
  }

  /** A live entry can never complete (its source is gone): → failed. False when it had already finished. */
  fail(id: string, error: ArteriaError, now: number): boolean {
    const ended = this.#end(id, 'failed', { code: error.code, message: error.message }, now);
    if (ended !== undefined) this.#transitions.emit({ from: ended.from, to: 'failed', entry: { ...ended.entry, state: 'failed' }, error, at: now });
    return ended !== undefined;
  }

  /** Its sender withdrew a live entry (`reason`: why): → cancelled. False when it had already finished. */
  cancel(id: string, reason: unknown, now: number): boolean {
    const message = reason instanceof Error ? reason.message : String(reason);
    const ended = this.#end(id, 'cancelled', { code: 'WITHDRAWN', message: `withdrawn by the sender: ${message}` }, now);
    if (ended !== undefined) this.#transitions.emit({ from: ended.from, to: 'cancelled', entry: { ...ended.entry, state: 'cancelled' }, reason, at: now });
    return ended !== undefined;
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

  #stateOf(id: string): EntryState | undefined {
    return (this.#db.prepare('SELECT state FROM outbox WHERE id = ?').get(id) as { state: EntryState } | undefined)?.state;
  }

  #require<S extends EntryState>(id: string, state: S): OutboxEntry & { state: S } {
    const entry = this.get(id);
    if (entry?.state !== state) throw new ArteriaError('INTERNAL', `outbox entry ${id} is not ${state} after its update`);
    return { ...entry, state };
  }

  #recordPublish(id: string, at: number): void {
    this.#db
      .prepare(
        `UPDATE outbox SET state = 'published', publishes = publishes + 1, first_published_at = COALESCE(first_published_at, ?),
           last_published_at = ?, updated_at = ? WHERE id = ?`,
      )
      .run(at, at, at, id);
  }

  /**
   * Ends a live entry; undefined when it had already finished (a withdrawal crossing its
   * result). A segmented run whose run-open may have reached the platform (its header is
   * uploaded: the run-open goes only after) is noted to abandon there, in the same transaction.
   */
  #end(id: string, state: 'failed' | 'cancelled', reason: { code: string; message: string }, now: number): { from: LiveState; entry: OutboxEntry } | undefined {
    const ended = this.#db.transaction(() => {
      const from = this.#stateOf(id);
      if (from === undefined || from === 'done' || from === 'failed' || from === 'cancelled') return undefined;
      const lastError = state === 'failed' ? `${reason.code}: ${reason.message}` : reason.message;
      this.#db.prepare('UPDATE outbox SET state = ?, last_error = ?, updated_at = ? WHERE id = ?').run(state, lastError, now, id);
      const entry = this.#require(id, state);
      if (entry.kind === 'segmented' && entry.requestId !== undefined && this.segments.get(id)?.headerUploadedAt !== undefined) this.abandons.note(id, entry.requestId, reason, now);
      return { from, entry };
    }).immediate();
    if (ended !== undefined) this.#prune();
    return ended;
  }

  #prune(): void {
    this.#db
      .prepare(
        `DELETE FROM outbox WHERE state IN ${FINISHED_STATES} AND seq NOT IN
           (SELECT seq FROM outbox WHERE state IN ${FINISHED_STATES} ORDER BY seq DESC LIMIT ?)`,
      )
      .run(this.#options.keepFinishedEntries);
    this.segments.pruneOrphans();
    this.abandons.pruneOrphans();
  }
}
