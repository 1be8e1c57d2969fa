import { randomBytes } from 'node:crypto';
import type { SqliteDatabase } from './sqlite-database.js';
import type { DeadLetter, EnqueueResult, Lease, QueueStats } from '@arteria/ports';

/**
 * The SQL half of the SQLite work queue: schema, prepared statements and one
 * transaction per operation. Synchronous, no timers; times are epoch ms passed in, so
 * several processes sharing the file agree on them.
 *
 * A task row is either `ready` (visible from `visible_at`: enqueue or nack delay) or
 * `leased` (invisible until `visible_at`, the lease expiry). Both are leasable once
 * `visible_at` has passed, which is how expired leases are redelivered.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  dedupe_id TEXT NOT NULL UNIQUE,
  payload BLOB NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ready', 'leased')),
  deliveries INTEGER NOT NULL DEFAULT 0,
  enqueued_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  lease_token TEXT,
  last_reason TEXT
);
CREATE INDEX IF NOT EXISTS queue_tasks_visible ON queue_tasks (visible_at, id);
CREATE TABLE IF NOT EXISTS queue_dead_letters (
  task_id INTEGER PRIMARY KEY,
  dedupe_id TEXT NOT NULL,
  payload BLOB NOT NULL,
  deliveries INTEGER NOT NULL,
  enqueued_at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_dead_letters_at ON queue_dead_letters (at);
CREATE TABLE IF NOT EXISTS queue_dedupe (
  dedupe_id TEXT PRIMARY KEY,
  task_id INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_dedupe_expiry ON queue_dedupe (expires_at);
`;

/** Expired dedupe entries are deleted at most this often (on enqueue). */
const DEDUPE_PRUNE_INTERVAL_MS = 60_000;

interface TaskRow {
  id: number;
  dedupe_id: string;
  payload: Buffer;
  state: 'ready' | 'leased';
  deliveries: number;
  enqueued_at: number;
  visible_at: number;
  lease_token: string | null;
  last_reason: string | null;
}

interface DeadLetterRow {
  task_id: number;
  dedupe_id: string;
  payload: Buffer;
  deliveries: number;
  enqueued_at: number;
  reason: string;
  at: number;
}

const toDeadLetter = (row: DeadLetterRow): DeadLetter => ({
  taskId: String(row.task_id),
  dedupeId: row.dedupe_id,
  payload: row.payload,
  deliveries: row.deliveries,
  reason: row.reason,
  at: row.at,
  enqueuedAt: row.enqueued_at,
});

interface StatsRow {
  ready: number | null;
  in_flight: number | null;
  delayed: number | null;
  oldest: number | null;
}

export interface StoreSettings {
  maxDeliveries: number;
  dedupeRetentionMs: number;
  /** Prefix of the queue's tables (`queue`: queue_tasks, queue_dead_letters, queue_dedupe); one queue per prefix in a file. */
  name: string;
}

export type LeaseOutcome = 'done' | 'lost';
export type NackOutcome = 'requeued' | 'dead-lettered' | 'lost';

/** Task ids are row ids; anything else cannot name a lease of ours. */
function rowId(taskId: string): number | undefined {
  if (!/^[1-9][0-9]{0,15}$/.test(taskId)) return undefined;
  const id = Number(taskId);
  return Number.isSafeInteger(id) ? id : undefined;
}

export class SqliteQueueStore {
  private readonly settings: StoreSettings;
  private nextPruneAt = 0;
  private readonly stmt;
  private readonly tx;

  constructor(sqlite: SqliteDatabase, settings: StoreSettings) {
    this.settings = settings;
    // Each queue of a file (one per worker pool) has tables of its own under its name.
    const named = (sql: string): string => (settings.name === 'queue' ? sql : sql.replaceAll(/\bqueue_/g, `${settings.name}_`));
    const db = { prepare: ((sql: string) => sqlite.prepare(named(sql))) as SqliteDatabase['prepare'], transaction: sqlite.transaction.bind(sqlite) };
    sqlite.exec(named(SCHEMA));
    this.stmt = {
      liveByDedupe: db.prepare<[string], { id: number }>('SELECT id FROM queue_tasks WHERE dedupe_id = ?'),
      keptByDedupe: db.prepare<[string], { task_id: number; expires_at: number }>(
        'SELECT task_id, expires_at FROM queue_dedupe WHERE dedupe_id = ?',
      ),
      deleteDedupe: db.prepare<[string]>('DELETE FROM queue_dedupe WHERE dedupe_id = ?'),
      pruneDedupe: db.prepare<[number]>('DELETE FROM queue_dedupe WHERE expires_at <= ?'),
      keepDedupe: db.prepare<[string, number, number]>(
        'INSERT OR REPLACE INTO queue_dedupe (dedupe_id, task_id, expires_at) VALUES (?, ?, ?)',
      ),
      insert: db.prepare<[string, Buffer, number, number]>(
        `INSERT INTO queue_tasks (dedupe_id, payload, state, enqueued_at, visible_at) VALUES (?, ?, 'ready', ?, ?)`,
      ),
      visible: db.prepare<[number, number], TaskRow>(
        'SELECT * FROM queue_tasks WHERE visible_at <= ? ORDER BY visible_at, id LIMIT ?',
      ),
      leased: db.prepare<[number, string], TaskRow>(
        `SELECT * FROM queue_tasks WHERE id = ? AND state = 'leased' AND lease_token = ?`,
      ),
      markLeased: db.prepare<[number, number, string, string | null, number]>(
        `UPDATE queue_tasks SET state = 'leased', deliveries = ?, visible_at = ?, lease_token = ?, last_reason = ? WHERE id = ?`,
      ),
      requeue: db.prepare<[number, string, number]>(
        `UPDATE queue_tasks SET state = 'ready', visible_at = ?, lease_token = NULL, last_reason = ? WHERE id = ?`,
      ),
      extend: db.prepare<[number, number, string]>(
        `UPDATE queue_tasks SET visible_at = ? WHERE id = ? AND state = 'leased' AND lease_token = ?`,
      ),
      delete: db.prepare<[number]>('DELETE FROM queue_tasks WHERE id = ?'),
      insertDead: db.prepare<[number, string, Buffer, number, number, string, number]>(
        `INSERT OR REPLACE INTO queue_dead_letters (task_id, dedupe_id, payload, deliveries, enqueued_at, reason, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      deadLetters: db.prepare<[number], DeadLetterRow>(
        'SELECT task_id, dedupe_id, payload, deliveries, enqueued_at, reason, at FROM queue_dead_letters ORDER BY at DESC, task_id DESC LIMIT ?',
      ),
      deadLetter: db.prepare<[number], DeadLetterRow>(
        'SELECT task_id, dedupe_id, payload, deliveries, enqueued_at, reason, at FROM queue_dead_letters WHERE task_id = ?',
      ),
      deleteDead: db.prepare<[number]>('DELETE FROM queue_dead_letters WHERE task_id = ?'),
      deadCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM queue_dead_letters'),
      stats: db.prepare<{ now: number }, StatsRow>(
        `SELECT SUM(visible_at <= @now) AS ready,
                SUM(state = 'leased' AND visible_at > @now) AS in_flight,
                SUM(state = 'ready' AND visible_at > @now) AS delayed,
                MIN(CASE WHEN visible_at <= @now OR state = 'leased' OR deliveries > 0 THEN enqueued_at END) AS oldest
           FROM queue_tasks`,
      ),
      nextVisible: db.prepare<[], { at: number | null }>('SELECT MIN(visible_at) AS at FROM queue_tasks'),
    };
    // IMMEDIATE takes the write lock before reading, so two processes never claim the
    // same row and never deadlock upgrading a read lock.
    this.tx = {
      enqueue: db.transaction(this.enqueueTx.bind(this)),
      claim: db.transaction(this.claimTx.bind(this)),
      ack: db.transaction(this.ackTx.bind(this)),
      nack: db.transaction(this.nackTx.bind(this)),
      deadLetter: db.transaction(this.deadLetterTx.bind(this)),
    };
  }

  enqueue(payload: Buffer, dedupeId: string, now: number, delayMs: number): EnqueueResult {
    return this.tx.enqueue.immediate(payload, dedupeId, now, delayMs);
  }

  /** Leases up to `max` visible tasks; those past maxDeliveries go to the dead letters instead. */
  claim(now: number, max: number, visibilityMs: number): Lease[] {
    return this.tx.claim.immediate(now, max, visibilityMs);
  }

  ack(lease: Lease, now: number): LeaseOutcome {
    return this.tx.ack.immediate(lease, now);
  }

  extend(lease: Lease, now: number, visibilityMs: number): LeaseOutcome {
    const id = rowId(lease.taskId);
    if (id === undefined) return 'lost';
    return this.stmt.extend.run(now + visibilityMs, id, lease.token).changes === 1 ? 'done' : 'lost';
  }

  nack(lease: Lease, now: number, delayMs: number, reason: string): NackOutcome {
    return this.tx.nack.immediate(lease, now, delayMs, reason);
  }

  deadLetter(lease: Lease, now: number, reason: string): LeaseOutcome {
    return this.tx.deadLetter.immediate(lease, now, reason);
  }

  pending(dedupeId: string): boolean {
    // Rows live only while the task is to be settled: ack deletes, dead-lettering moves.
    return this.stmt.liveByDedupe.get(dedupeId) !== undefined;
  }

  stats(now: number): QueueStats {
    const row = this.stmt.stats.get({ now });
    return {
      ready: row?.ready ?? 0,
      inFlight: row?.in_flight ?? 0,
      delayed: row?.delayed ?? 0,
      deadLettered: this.stmt.deadCount.get()?.n ?? 0,
      oldestAgeMs: row?.oldest == null ? 0 : Math.max(0, now - row.oldest),
    };
  }

  /** Newest first. */
  deadLetters(limit: number): DeadLetter[] {
    return this.stmt.deadLetters.all(limit).map(toDeadLetter);
  }

  findDeadLetter(taskId: string): DeadLetter | undefined {
    const id = rowId(taskId);
    const row = id === undefined ? undefined : this.stmt.deadLetter.get(id);
    return row === undefined ? undefined : toDeadLetter(row);
  }

  removeDeadLetter(taskId: string): boolean {
    const id = rowId(taskId);
    return id !== undefined && this.stmt.deleteDead.run(id).changes === 1;
  }

  /** Epoch ms at which the next task becomes leasable (ready, delayed or expiring), if any. */
  nextVisibleAt(): number | undefined {
    return this.stmt.nextVisible.get()?.at ?? undefined;
  }

  private enqueueTx(payload: Buffer, dedupeId: string, now: number, delayMs: number): EnqueueResult {
    if (now >= this.nextPruneAt) {
      this.stmt.pruneDedupe.run(now);
      this.nextPruneAt = now + DEDUPE_PRUNE_INTERVAL_MS;
    }
    const live = this.stmt.liveByDedupe.get(dedupeId);
    if (live) return { enqueued: false, taskId: String(live.id) };
    const kept = this.stmt.keptByDedupe.get(dedupeId);
    if (kept && kept.expires_at > now) return { enqueued: false, taskId: String(kept.task_id) };
    if (kept) this.stmt.deleteDedupe.run(dedupeId);
    const info = this.stmt.insert.run(dedupeId, payload, now, now + delayMs);
    return { enqueued: true, taskId: String(info.lastInsertRowid) };
  }

  private claimTx(now: number, max: number, visibilityMs: number): Lease[] {
    const { maxDeliveries } = this.settings;
    const leases: Lease[] = [];
    // Dead-lettering frees slots, so look again until `max` leases or nothing visible.
    for (;;) {
      const rows = this.stmt.visible.all(now, max - leases.length);
      if (rows.length === 0) return leases;
      for (const row of rows) {
        const expired = row.state === 'leased';
        const lastReason = expired ? 'visibility timeout expired' : row.last_reason;
        const deliveries = row.deliveries + 1;
        if (deliveries > maxDeliveries) {
          const reason = `max deliveries (${maxDeliveries}) exceeded${lastReason ? `; last: ${lastReason}` : ''}`;
          this.moveToDeadLetters(row, reason, now);
          continue;
        }
        const token = randomBytes(12).toString('base64url');
        this.stmt.markLeased.run(deliveries, now + visibilityMs, token, lastReason, row.id);
        leases.push({
          taskId: String(row.id),
          dedupeId: row.dedupe_id,
          payload: row.payload,
          deliveries,
          enqueuedAt: row.enqueued_at,
          token,
        });
      }
      if (leases.length >= max) return leases;
    }
  }

  private ackTx(lease: Lease, now: number): LeaseOutcome {
    const row = this.leasedRow(lease);
    if (!row) return 'lost';
    this.stmt.delete.run(row.id);
    this.keepDedupe(row, now);
    return 'done';
  }

  private nackTx(lease: Lease, now: number, delayMs: number, reason: string): NackOutcome {
    const row = this.leasedRow(lease);
    if (!row) return 'lost';
    const { maxDeliveries } = this.settings;
    // The delivery was counted at lease time; with none left, waiting out the delay
    // would only postpone the dead letter.
    if (row.deliveries >= maxDeliveries) {
      this.moveToDeadLetters(row, `max deliveries (${maxDeliveries}) exceeded; last: ${reason}`, now);
      return 'dead-lettered';
    }
    this.stmt.requeue.run(now + delayMs, reason, row.id);
    return 'requeued';
  }

  private deadLetterTx(lease: Lease, now: number, reason: string): LeaseOutcome {
    const row = this.leasedRow(lease);
    if (!row) return 'lost';
    this.moveToDeadLetters(row, reason, now);
    return 'done';
  }

  private leasedRow(lease: Lease): TaskRow | undefined {
    const id = rowId(lease.taskId);
    return id === undefined ? undefined : this.stmt.leased.get(id, lease.token);
  }

  private moveToDeadLetters(row: TaskRow, reason: string, now: number): void {
    this.stmt.insertDead.run(row.id, row.dedupe_id, row.payload, row.deliveries, row.enqueued_at, reason, now);
    this.stmt.delete.run(row.id);
    this.keepDedupe(row, now);
  }

  /** A finished task's dedupeId keeps deduping for the retention window. */
  private keepDedupe(row: TaskRow, now: number): void {
    if (this.settings.dedupeRetentionMs > 0) {
      this.stmt.keepDedupe.run(row.dedupe_id, row.id, now + this.settings.dedupeRetentionMs);
    }
  }
}
