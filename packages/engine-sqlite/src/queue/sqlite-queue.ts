import { performance } from 'node:perf_hooks';
import { ArteriaError, Lifecycle } from '@arteria/protocol';
import { commitsAt, openSqlite, settle, type SqliteDatabase } from './sqlite-database.js';
import { compileSqliteWorkQueueOptions, type SqliteWorkQueueConfig, type SqliteWorkQueueOptions } from './sqlite-queue-options.js';
import { SqliteQueueStore } from './sqlite-queue-store.js';
import { LeaseWaiters, type DeadLetter, type EnqueueOptions, type EnqueueResult, type Lease, type LeaseOptions, type QueueStats, type WorkQueue } from '@arteria/ports';

/**
 * The embedded work queue: one SQLite file (WAL), shareable by several processes.
 *
 * Leasing claims rows in an IMMEDIATE transaction, so no task is leased twice even across
 * processes. A waiting lease() is woken at once by enqueue/nack through this instance
 * (one waiting leaser per task). Otherwise one timer per instance looks at the file every
 * `pollIntervalMs` (sooner when a delay or lease is about to run out) while leasers wait,
 * and wakes them when a task is due there (another process's, a delayed one, an expired
 * lease): not every waiting leaser on its own. Run one instance per process for the
 * lowest latency.
 *
 * Across processes, writers wait for SQLite's write lock in its busy handler (up to 5 s,
 * blocking that process's event loop, then QUEUE_UNAVAILABLE). The lock is not queued
 * fairly: it suits workers that spend time on each task, not several processes committing
 * back to back.
 */
export class SqliteWorkQueue implements WorkQueue, AsyncDisposable {
  readonly kind = 'sqlite';
  readonly config: SqliteWorkQueueConfig;
  private readonly db: SqliteDatabase;
  private readonly store: SqliteQueueStore;
  /** Wake-ups of leasers waiting in this process. */
  private readonly waiters = new LeaseWaiters();
  /** The one look at the file on behalf of every waiting leaser (undefined: none scheduled). */
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly pendingEnqueues: PendingEnqueue[] = [];
  private readonly enqueueBatch: (fn: () => void) => void;
  /** Runs one commit at the configured synchronous level (the connection default is NORMAL). */
  private readonly durably: <T>(fn: () => T) => T;
  private readonly life = new Lifecycle('SQLite work queue');

  constructor(options: SqliteWorkQueueOptions) {
    this.config = compileSqliteWorkQueueOptions(options);
    // Only enqueue carries the durability promise (a device is told its request is safe).
    // Lease, ack, extend and nack commit with NORMAL: losing one on power loss means a
    // redelivery, which every stage tolerates; and the next FULL commit syncs the shared
    // WAL, theirs included. One fsync per request instead of four.
    this.db = openSqlite(this.config.path, 'NORMAL', 'QUEUE_UNAVAILABLE');
    this.durably = commitsAt(this.db, this.config.synchronous, 'NORMAL');
    const batchTx = this.db.transaction((fn: () => void) => fn());
    this.enqueueBatch = (fn) => batchTx.immediate(fn);
    try {
      this.store = new SqliteQueueStore(this.db, {
        maxDeliveries: this.config.maxDeliveries,
        dedupeRetentionMs: this.config.dedupeRetentionMs,
        name: this.config.name,
      });
    } catch (err) {
      this.db.close();
      throw new ArteriaError('QUEUE_UNAVAILABLE', `cannot prepare queue tables in ${this.config.path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // Closed last-registered-first: pending enqueues commit, waiters resume (they see the
    // queue closed and resolve [] without the file), then the file closes.
    this.life.defer('database file', () => void this.db.close());
    this.life.defer('waiting leases', () => {
      clearTimeout(this.pollTimer);
      this.wake();
    });
    this.life.defer('pending enqueues', () => this.flushEnqueues());
    this.life.begin();
  }

  /** From close() on: the queue takes no more work. */
  private get closed(): boolean {
    return !this.life.running;
  }

  /** A closed queue is unavailable (retryable: its caller's work is retried elsewhere); the cause says why. */
  private closedError(operation: string): ArteriaError {
    return new ArteriaError('QUEUE_UNAVAILABLE', `${operation}: the queue is closed`, { cause: this.life.illegal(operation) });
  }

  /** Path of the database file. */
  get path(): string {
    return this.config.path;
  }

  enqueue(payload: Buffer, options: EnqueueOptions): Promise<EnqueueResult> {
    const delayMs = options.delayMs ?? 0;
    // Callers are platform code, so a bad argument is a platform defect (INTERNAL).
    if (!Buffer.isBuffer(payload)) return Promise.reject(new ArteriaError('INTERNAL', 'enqueue payload must be a Buffer'));
    if (typeof options.dedupeId !== 'string' || options.dedupeId.length === 0 || options.dedupeId.length > 1024) {
      return Promise.reject(new ArteriaError('INTERNAL', 'dedupeId must be a string of 1 to 1024 characters'));
    }
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      return Promise.reject(new ArteriaError('INTERNAL', `delayMs must be a finite number >= 0, got ${delayMs}`));
    }
    if (this.closed) return Promise.reject(this.closedError('enqueue'));
    return new Promise((resolve, reject) => {
      this.pendingEnqueues.push({ payload, dedupeId: options.dedupeId, delayMs: Math.ceil(delayMs), resolve, reject });
      if (this.pendingEnqueues.length === 1) setImmediate(() => this.flushEnqueues());
    });
  }

  /**
   * Group commit: every enqueue requested in one turn of the event loop is written in one
   * transaction, so one WAL sync makes the whole group durable. Under load this turns one
   * fsync per request into one per batch; alone, a request waits for nothing but its own.
   */
  private flushEnqueues(): void {
    const batch = this.pendingEnqueues.splice(0);
    if (batch.length === 0) return;
    const outcomes: (EnqueueResult | Error)[] = [];
    try {
      // Admitted while the queue ran: committed even when close() is flushing them.
      this.engine('enqueue', () =>
        this.durably(() =>
          this.enqueueBatch(() => {
            const now = Date.now();
            for (const item of batch) {
              try {
                outcomes.push(this.store.enqueue(item.payload, item.dedupeId, now, item.delayMs));
              } catch (err) {
                outcomes.push(err instanceof Error ? err : new Error(String(err)));
              }
            }
          }),
        ),
      );
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    let added = 0;
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome instanceof Error || outcome === undefined) {
        item.reject(new ArteriaError('QUEUE_UNAVAILABLE', `enqueue failed: ${outcome?.message ?? 'no outcome'}`, { cause: outcome }));
      } else {
        if (outcome.enqueued) added += 1;
        item.resolve(outcome);
      }
    });
    // One waiting leaser per task added: waking them all made every idle worker query the
    // file and go back to sleep for each request (what a woken one cannot take, the look at the file finds).
    if (added > 0) this.wake(added);
  }

  /**
   * Long poll. Resolves with [] when `waitMs` passes without work, when `signal` aborts
   * (nothing is leased then) and when the queue closes, also if it was closed before.
   */
  async lease(options: LeaseOptions): Promise<Lease[]> {
    const { max, visibilityMs, waitMs, signal } = options;
    if (!Number.isInteger(max) || max < 1) throw new ArteriaError('CONFIG_INVALID', `lease max must be an integer >= 1, got ${max}`);
    checkPositive('visibilityMs', visibilityMs);
    if (!Number.isFinite(waitMs) || waitMs < 0) throw new ArteriaError('CONFIG_INVALID', `waitMs must be >= 0, got ${waitMs}`);
    const claim = (): Lease[] =>
      this.guard('lease', () => {
        const now = Date.now();
        // Look before taking the write lock: idle leasers must not queue up behind writers.
        const next = this.store.nextVisibleAt();
        return next === undefined || next > now ? [] : this.store.claim(now, max, Math.ceil(visibilityMs));
      });

    if (this.closed || signal?.aborted) return [];
    const first = claim();
    if (first.length > 0 || waitMs === 0) return first;
    const deadline = performance.now() + waitMs;
    for (;;) {
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) return [];
      this.schedulePoll();
      await this.sleep(remainingMs, signal);
      if (this.closed || signal?.aborted) return [];
      const leases = claim();
      if (leases.length > 0) return leases;
    }
  }

  extend(lease: Lease, visibilityMs: number): Promise<void> {
    return this.settleLease('extend', lease, () => {
      checkPositive('visibilityMs', visibilityMs);
      return this.store.extend(lease, Date.now(), Math.ceil(visibilityMs));
    });
  }

  ack(lease: Lease): Promise<void> {
    return this.settleLease('ack', lease, () => this.store.ack(lease, Date.now()));
  }

  /** On the last allowed delivery the task is dead-lettered at once instead of requeued. */
  nack(lease: Lease, options: { delayMs: number; reason: string }): Promise<void> {
    return this.settleLease('nack', lease, () => {
      const { delayMs, reason } = options;
      if (!Number.isFinite(delayMs) || delayMs < 0) {
        throw new ArteriaError('CONFIG_INVALID', `nack delayMs must be a finite number >= 0, got ${delayMs}`);
      }
      const outcome = this.store.nack(lease, Date.now(), Math.ceil(delayMs), reason);
      if (outcome === 'requeued') this.wake(1);
      return outcome === 'lost' ? 'lost' : 'done';
    });
  }

  deadLetter(lease: Lease, reason: string): Promise<void> {
    return this.settleLease('dead-letter', lease, () => this.store.deadLetter(lease, Date.now(), reason));
  }

  stats(): Promise<QueueStats> {
    return settle(() => this.guard('stats', () => this.store.stats(Date.now())));
  }

  pending(dedupeId: string): Promise<boolean> {
    return settle(() => this.guard('pending', () => this.store.pending(dedupeId)));
  }

  /** Newest first. */
  deadLetters(limit: number): Promise<DeadLetter[]> {
    return settle(() => {
      if (!Number.isInteger(limit) || limit < 0) throw new ArteriaError('CONFIG_INVALID', `limit must be an integer >= 0, got ${limit}`);
      return this.guard('deadLetters', () => this.store.deadLetters(limit));
    });
  }

  findDeadLetter(taskId: string): Promise<DeadLetter | undefined> {
    return settle(() => this.guard('findDeadLetter', () => this.store.findDeadLetter(taskId)));
  }

  /** Committed at the configured synchronous level: a removal follows a replay's durable enqueue. */
  removeDeadLetter(taskId: string): Promise<boolean> {
    return settle(() => this.guard('removeDeadLetter', () => this.durably(() => this.store.removeDeadLetter(taskId))));
  }

  /** Commits the enqueues already requested, ends waiting leases with [], closes the file; memoised (CLOSE_FAILED names each failed step). */
  close(): Promise<void> {
    return this.life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs an operation on a lease; 'lost' becomes LEASE_LOST. */
  private settleLease(operation: string, lease: Lease, fn: () => 'done' | 'lost'): Promise<void> {
    return settle(() => {
      if (this.guard(operation, fn) === 'lost') {
        throw new ArteriaError(
          'LEASE_LOST',
          `cannot ${operation} task ${lease.taskId}: its lease expired and passed to another worker, or the task is already done`,
        );
      }
    });
  }

  /** Runs one store operation, mapping engine failures to QUEUE_UNAVAILABLE (retryable). */
  private guard<T>(operation: string, fn: () => T): T {
    if (this.closed) throw this.closedError(operation);
    return this.engine(operation, fn);
  }

  private engine<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      throw new ArteriaError('QUEUE_UNAVAILABLE', `${operation} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Starts the look at the file for the waiting leasers, unless one is scheduled. */
  private schedulePoll(): void {
    if (this.pollTimer === undefined && !this.closed) this.armPoll(this.peekNextVisibleAt());
  }

  /**
   * Wakes the waiting leasers when a task is due in the file (all of them: it may be a
   * burst another process enqueued; those that find nothing sleep again), and looks again
   * while any wait. A file it cannot read wakes them too: their claim reports the error.
   */
  private poll(): void {
    this.pollTimer = undefined;
    if (this.closed || this.waiters.size === 0) return;
    const next = this.peekNextVisibleAt();
    if (next === null || (next !== undefined && next <= Date.now())) this.wake();
    if (this.waiters.size > 0 && !this.closed) this.armPoll(next);
  }

  /** When the next task becomes visible (undefined: none queued; null: the file could not be read). */
  private peekNextVisibleAt(): number | undefined | null {
    try {
      return this.store.nextVisibleAt();
    } catch {
      return null;
    }
  }

  /** Schedules the next look: after `pollIntervalMs`, or sooner when the next task is due sooner. */
  private armPoll(next: number | undefined | null): void {
    const poll = this.config.pollIntervalMs;
    // At least 1 ms: a task another process just made visible must not spin the timer.
    const ms = next === undefined || next === null ? poll : Math.max(1, Math.min(poll, next - Date.now()));
    this.pollTimer = setTimeout(() => this.poll(), ms).unref();
  }

  private sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return this.waiters.sleep(ms, signal);
  }

  /** Wakes up to `limit` leasers waiting in this process (all of them at close). */
  private wake(limit = Infinity): void {
    this.waiters.wake(limit);
  }

}

interface PendingEnqueue {
  payload: Buffer;
  dedupeId: string;
  delayMs: number;
  resolve: (result: EnqueueResult) => void;
  reject: (error: unknown) => void;
}

function checkPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) throw new ArteriaError('CONFIG_INVALID', `${name} must be > 0, got ${value}`);
}
