import type { SqliteDatabase } from '@arteria/engine-sqlite';
import type { DeadLetter, QueueStats } from '@arteria/ports';

/**
 * Arteria's record of each task of an SQS queue, in SQLite: what SQS cannot hold.
 * - dedupe for as long as a task exists and `dedupeRetentionMs` after (SQS FIFO dedupes
 *   for 5 minutes only; standard queues not at all);
 * - lease ownership: `generation` is in the lease token and every lease change is a
 *   compare-and-set on it. SQS accepts a DeleteMessage or ChangeMessageVisibility with an
 *   earlier receipt handle of the same message, so the server alone cannot refuse a
 *   stale holder;
 * - which send of the task is live (`sendId`, also in the message body): any other
 *   message naming the task is a stray copy and is deleted when received;
 * - exact stats (SQS counts a nack delay as in flight) and dead letters by task id.
 */
export type TaskState = 'queued' | 'leased' | 'done' | 'dead';

export interface TaskRecord {
  dedupeId: string;
  taskId: string;
  /** The send of the task that is live (in its message body); copies from other sends are strays. */
  sendId: string;
  state: TaskState;
  generation: number;
  deliveries: number;
  enqueuedAt: number;
  /** queued: when it may be leased; leased: when the lease runs out. */
  visibleAt: number;
  updatedAt: number;
  lastReason: string | null;
  deadReason: string | null;
  deadAt: number | null;
  /** Kept only once dead: SQS no longer holds the message. */
  deadPayload: Buffer | null;
}

interface Row {
  dedupe_id: string;
  task_id: string;
  send_id: string;
  state: TaskState;
  generation: number;
  deliveries: number;
  enqueued_at: number;
  visible_at: number;
  updated_at: number;
  last_reason: string | null;
  dead_reason: string | null;
  dead_at: number | null;
  dead_payload: Buffer | null;
}

const fromRow = (row: Row): TaskRecord => ({
  dedupeId: row.dedupe_id,
  taskId: row.task_id,
  sendId: row.send_id,
  state: row.state,
  generation: row.generation,
  deliveries: row.deliveries,
  enqueuedAt: row.enqueued_at,
  visibleAt: row.visible_at,
  updatedAt: row.updated_at,
  lastReason: row.last_reason,
  deadReason: row.dead_reason,
  deadAt: row.dead_at,
  deadPayload: row.dead_payload,
});

const toDeadLetter = (r: TaskRecord): DeadLetter => ({
  taskId: r.taskId,
  dedupeId: r.dedupeId,
  payload: r.deadPayload ?? Buffer.alloc(0),
  deliveries: r.deliveries,
  reason: r.deadReason ?? '',
  at: r.deadAt ?? r.updatedAt,
  enqueuedAt: r.enqueuedAt,
});

const COLUMNS = 'dedupe_id, task_id, send_id, state, generation, deliveries, enqueued_at, visible_at, updated_at, last_reason, dead_reason, dead_at, dead_payload';

export class SqsTaskRecords {
  constructor(
    private readonly db: SqliteDatabase,
    /** Several queues may share one file: every row names its queue. */
    private readonly queue: string,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS sqs_task_records (
      queue TEXT NOT NULL, dedupe_id TEXT NOT NULL, task_id TEXT NOT NULL, send_id TEXT NOT NULL,
      state TEXT NOT NULL, generation INTEGER NOT NULL, deliveries INTEGER NOT NULL,
      enqueued_at INTEGER NOT NULL, visible_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      last_reason TEXT, dead_reason TEXT, dead_at INTEGER, dead_payload BLOB,
      PRIMARY KEY (queue, dedupe_id));
    CREATE UNIQUE INDEX IF NOT EXISTS sqs_task_records_task ON sqs_task_records (queue, task_id);
    CREATE INDEX IF NOT EXISTS sqs_task_records_state ON sqs_task_records (queue, state, updated_at);`);
  }

  get(dedupeId: string): TaskRecord | undefined {
    const row = this.db.prepare<[string, string], Row>(`SELECT ${COLUMNS} FROM sqs_task_records WHERE queue = ? AND dedupe_id = ?`).get(this.queue, dedupeId);
    return row === undefined ? undefined : fromRow(row);
  }

  /** Adds the record unless its dedupeId has one; returns the one that stands. */
  insert(record: TaskRecord): { inserted: boolean; record: TaskRecord } {
    const result = this.db
      .prepare(`INSERT OR IGNORE INTO sqs_task_records (queue, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(this.queue, ...this.values(record));
    if (result.changes === 1) return { inserted: true, record };
    const existing = this.get(record.dedupeId);
    if (existing === undefined) return this.insert(record); // removed between the two statements
    return { inserted: false, record: existing };
  }

  /** Writes `record` if the stored generation is still `expected`; false when someone changed it first. */
  replace(record: TaskRecord, expected: number): boolean {
    const [, ...rest] = this.values(record);
    const result = this.db
      .prepare(
        `UPDATE sqs_task_records SET task_id = ?, send_id = ?, state = ?, generation = ?, deliveries = ?, enqueued_at = ?,
         visible_at = ?, updated_at = ?, last_reason = ?, dead_reason = ?, dead_at = ?, dead_payload = ?
         WHERE queue = ? AND dedupe_id = ? AND generation = ?`,
      )
      .run(...rest, this.queue, record.dedupeId, expected);
    return result.changes === 1;
  }

  /** Deletes a record that is still at generation `expected` (an enqueue whose send failed). */
  remove(dedupeId: string, expected: number): void {
    this.db.prepare('DELETE FROM sqs_task_records WHERE queue = ? AND dedupe_id = ? AND generation = ?').run(this.queue, dedupeId, expected);
  }

  stats(now: number): QueueStats {
    const row = this.db
      .prepare<[number, number, number, number, number, string], { ready: number | null; inFlight: number | null; delayed: number | null; dead: number | null; oldest: number | null }>(
        `SELECT
          SUM(CASE WHEN (state = 'queued' AND visible_at <= ?) OR (state = 'leased' AND visible_at <= ?) THEN 1 ELSE 0 END) AS ready,
          SUM(CASE WHEN state = 'leased' AND visible_at > ? THEN 1 ELSE 0 END) AS inFlight,
          SUM(CASE WHEN state = 'queued' AND visible_at > ? THEN 1 ELSE 0 END) AS delayed,
          SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) AS dead,
          MIN(CASE WHEN state = 'leased' OR (state = 'queued' AND (visible_at <= ? OR deliveries > 0)) THEN enqueued_at END) AS oldest
        FROM sqs_task_records WHERE queue = ?`,
      )
      .get(now, now, now, now, now, this.queue);
    return {
      ready: row?.ready ?? 0,
      inFlight: row?.inFlight ?? 0,
      delayed: row?.delayed ?? 0,
      deadLettered: row?.dead ?? 0,
      oldestAgeMs: row?.oldest == null ? 0 : Math.max(0, now - row.oldest),
    };
  }

  deadLetters(limit: number): DeadLetter[] {
    return this.db
      .prepare<[string, number], Row>(`SELECT ${COLUMNS} FROM sqs_task_records WHERE queue = ? AND state = 'dead' ORDER BY dead_at DESC, rowid DESC LIMIT ?`)
      .all(this.queue, limit)
      .map((row) => toDeadLetter(fromRow(row)));
  }

  findDead(taskId: string): TaskRecord | undefined {
    const row = this.db
      .prepare<[string, string], Row>(`SELECT ${COLUMNS} FROM sqs_task_records WHERE queue = ? AND task_id = ? AND state = 'dead'`)
      .get(this.queue, taskId);
    return row === undefined ? undefined : fromRow(row);
  }

  /** Forgets done records older than the dedupe retention; dead letters stay until removed. */
  prune(before: number): void {
    this.db.prepare(`DELETE FROM sqs_task_records WHERE queue = ? AND state = 'done' AND updated_at < ?`).run(this.queue, before);
  }

  private values(r: TaskRecord): [string, string, string, TaskState, number, number, number, number, number, string | null, string | null, number | null, Buffer | null] {
    return [r.dedupeId, r.taskId, r.sendId, r.state, r.generation, r.deliveries, r.enqueuedAt, r.visibleAt, r.updatedAt, r.lastReason, r.deadReason, r.deadAt, r.deadPayload];
  }
}

export { toDeadLetter };
