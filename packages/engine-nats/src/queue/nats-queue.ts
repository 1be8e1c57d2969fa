import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { ArteriaError, Lifecycle } from '@arteria/protocol';
import { natsConnectAuth, natsConnectError, natsOutageError } from './nats-auth.js';
import { DeadLetterStream } from './nats-queue-dead-letters.js';
import { NatsLeaser, type LeaseToken } from './nats-queue-leaser.js';
import { compileNatsWorkQueueOptions, type NatsWorkQueueConfig, type NatsWorkQueueOptions } from './nats-queue-options.js';
import { TaskRecords, type TaskRecord } from './nats-queue-records.js';
import { layoutOf, provision, type NatsQueueLayout } from './nats-queue-setup.js';
import { acknowledge, readTaskMeta, taskHeaders } from './nats-queue-wire.js';
import { type DeadLetter, type EnqueueOptions, type EnqueueResult, type Lease, type LeaseOptions, type QueueStats, type WorkQueue, LeaseWaiters } from '@arteria/ports';

/**
 * The cluster work queue on NATS JetStream.
 *
 * - Work stream (WorkQueue retention, file storage) with two subjects, each read by a
 *   durable pull consumer: `ready` (tasks to lease, in order) and `delayed` (enqueue and
 *   nack delays: a leaser moves a task to `ready` once due).
 * - Visibility is the server's ack deadline: AckWait on delivery, then `-NAK {delay}`
 *   sets it per lease and per extend (a nak with delay keeps the message pending and
 *   redelivers it when the delay runs out; a stale holder cannot see it in between).
 * - A records stream holds one record per task (dedupe, lease ownership, deliveries);
 *   see nats-queue-records.ts. A dead-letter stream keeps dead letters with their reason.
 *
 * Leases come from `no_wait` pulls; a waiting lease() is woken by any publish on the
 * work subjects (from any process) and otherwise pulls every `pollIntervalMs`.
 */
export class NatsWorkQueue implements WorkQueue, AsyncDisposable {
  readonly kind = 'nats-jetstream';
  readonly config: NatsWorkQueueConfig;
  private readonly layout: NatsQueueLayout;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly records: TaskRecords;
  private readonly dead: DeadLetterStream;
  private readonly leaser: NatsLeaser;
  private readonly subscriptions: Subscription[];
  private readonly waiters = new LeaseWaiters();
  /** Counts wake-ups, so a leaser can tell one happened while it was pulling. */
  private wakes = 0;
  /** Aborted at close: pulls in flight end. */
  private readonly closer = new AbortController();
  private readonly life = new Lifecycle('NATS work queue');

  private constructor(config: NatsWorkQueueConfig, nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager) {
    this.config = config;
    this.layout = layoutOf(config);
    this.nc = nc;
    this.js = js;
    this.jsm = jsm;
    const timeoutMs = config.requestTimeoutMs;
    this.records = new TaskRecords(js, jsm, this.layout.recordStream, this.layout.recordPrefix, timeoutMs);
    this.dead = new DeadLetterStream(js, jsm, this.layout.deadStream, this.layout.deadSubject, timeoutMs);
    this.leaser = new NatsLeaser({ nc, js, config, layout: this.layout, records: this.records, dead: this.dead, closed: this.closer.signal });
    // Announcements of stored tasks, from any process, wake leasers waiting here. One
    // task wakes one waiting lease() per process, not all of them: a herd of pulls for a
    // single message would load the server for nothing.
    this.subscriptions = [
      nc.subscribe(this.layout.wakeSubject, {
        callback: (err, msg) => {
          if (err) return; // without announcements, waiting leasers still find work by polling
          const dueAt = msg.data.length > 0 ? Number(msg.string()) : undefined;
          if (dueAt === undefined) return this.wake(1);
          // A due time changes how long every waiter may sleep: all of them look again.
          if (Number.isFinite(dueAt)) this.leaser.noteDelayed(dueAt);
          this.wake();
        },
      }),
    ];
    // Closed last-registered-first: waiters resume (they see the queue closed and resolve []
    // without the connection), announcements stop, the connection closes.
    this.life.defer('connection', () => this.nc.close());
    this.life.defer('announcements', () => {
      for (const sub of this.subscriptions) sub.unsubscribe();
    });
    this.life.defer('waiting leases', () => {
      this.closer.abort();
      this.wake();
    });
    this.life.begin();
  }

  /** Connects, creates or updates the streams and consumers, and returns the queue. */
  static async open(options: NatsWorkQueueOptions): Promise<NatsWorkQueue> {
    const config = compileNatsWorkQueueOptions(options);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: config.servers,
        ...(config.connectionName ? { name: config.connectionName } : {}),
        timeout: config.requestTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        ...natsConnectAuth(config.auth),
      });
    } catch (err) {
      throw natsConnectError(config.servers, err);
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: config.requestTimeoutMs });
      await provision(jsm, config, layoutOf(config));
      return new NatsWorkQueue(config, nc, jetstream(nc, { timeout: config.requestTimeoutMs }), jsm);
    } catch (err) {
      await nc.close();
      throw new ArteriaError('QUEUE_UNAVAILABLE', `cannot set up JetStream queue ${config.name}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** From close() on: the queue takes no more work. */
  private get closed(): boolean {
    return !this.life.running;
  }

  async enqueue(payload: Buffer, options: EnqueueOptions): Promise<EnqueueResult> {
    const delayMs = options.delayMs ?? 0;
    // Callers are platform code, so a bad argument is a platform defect (INTERNAL).
    if (!Buffer.isBuffer(payload)) throw new ArteriaError('INTERNAL', 'enqueue payload must be a Buffer');
    const { dedupeId } = options;
    if (typeof dedupeId !== 'string' || dedupeId.length === 0 || dedupeId.length > 1024) {
      throw new ArteriaError('INTERNAL', 'dedupeId must be a string of 1 to 1024 characters');
    }
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new ArteriaError('INTERNAL', `delayMs must be a finite number >= 0, got ${delayMs}`);
    return this.guard('enqueue', async () => {
      const now = Date.now();
      const notBefore = delayMs > 0 ? now + Math.ceil(delayMs) : undefined;
      // Within the duplicate window JetStream answers a resend with the first message.
      const ack = await this.js.publish(notBefore === undefined ? this.layout.readySubject : this.layout.delayedSubject, payload, {
        msgID: `enqueue.${createHash('sha256').update(dedupeId).digest('hex')}`,
        headers: taskHeaders({ dedupeId, enqueuedAt: now, ...(notBefore === undefined ? {} : { notBefore }) }),
        timeout: this.config.requestTimeoutMs,
      });
      const taskId = String(ack.seq);
      const fresh: TaskRecord = { taskId, dedupeId, msgSeq: ack.seq, state: notBefore ? 'delayed' : 'queued', deliveries: 0, enqueuedAt: now };
      // Beyond the window, the record decides: the first task with this dedupeId wins.
      for (let attempt = 0; attempt < 3; attempt++) {
        if ((await this.records.put(fresh, 0)) !== undefined) {
          if (!ack.duplicate) this.leaser.announce(notBefore);
          return { enqueued: !ack.duplicate, taskId };
        }
        const existing = await this.records.get(dedupeId);
        if (!existing) continue; // expired just now: create it again
        // A leaser may have found our message before we wrote the record: it is ours.
        if (existing.record.taskId === taskId) {
          if (!ack.duplicate) this.leaser.announce(notBefore);
          return { enqueued: !ack.duplicate, taskId };
        }
        if (!ack.duplicate) await this.dropMessage(ack.seq);
        return { enqueued: false, taskId: existing.record.taskId };
      }
      throw new ArteriaError('QUEUE_UNAVAILABLE', `enqueue ${JSON.stringify(dedupeId)}: its record keeps changing`);
    });
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
    if (this.closed || signal?.aborted) return [];
    const deadline = performance.now() + waitMs;
    for (;;) {
      // A publish seen while the pull was in flight must not wait for the poll timer.
      const wakesBefore = this.wakes;
      let leases: Lease[];
      try {
        leases = await this.guard('lease', () => this.leaser.leaseNow(max, Math.ceil(visibilityMs)));
      } catch (err) {
        if (this.closed) return [];
        throw err;
      }
      if (leases.length > 0 || waitMs === 0) return leases;
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) return [];
      if (this.wakes !== wakesBefore) continue;
      await this.sleep(Math.min(remainingMs, this.leaser.nextLookMs()), signal);
      if (this.closed || signal?.aborted) return [];
    }
  }

  extend(lease: Lease, visibilityMs: number): Promise<void> {
    return this.onLease('extend', lease, async (token) => {
      checkPositive('visibilityMs', visibilityMs);
      const stored = await this.records.get(lease.dedupeId);
      if (stored?.revision !== token.revision || stored.record.state !== 'leased') return 'lost';
      await acknowledge(this.nc, token.reply, { kind: 'nak', delayMs: visibilityMs }, this.config.requestTimeoutMs);
      return 'done';
    });
  }

  ack(lease: Lease): Promise<void> {
    return this.onLease('ack', lease, async (token) => {
      if ((await this.records.put({ ...this.leaser.recordOf(lease, token), state: 'done' }, token.revision)) === undefined) return 'lost';
      await acknowledge(this.nc, token.reply, { kind: 'ack' }, this.config.requestTimeoutMs);
      return 'done';
    });
  }

  /** On the last allowed delivery the task is dead-lettered at once instead of requeued. */
  nack(lease: Lease, options: { delayMs: number; reason: string }): Promise<void> {
    return this.onLease('nack', lease, async (token) => {
      const { delayMs, reason } = options;
      if (!Number.isFinite(delayMs) || delayMs < 0) {
        throw new ArteriaError('CONFIG_INVALID', `nack delayMs must be a finite number >= 0, got ${delayMs}`);
      }
      if (lease.deliveries >= this.config.maxDeliveries) {
        return this.leaser.deadLetter(lease, token, `max deliveries (${this.config.maxDeliveries}) exceeded; last: ${reason}`);
      }
      return this.leaser.requeue(lease, token, Math.ceil(delayMs), reason);
    });
  }

  deadLetter(lease: Lease, reason: string): Promise<void> {
    return this.onLease('dead-letter', lease, (token) => this.leaser.deadLetter(lease, token, reason));
  }

  /**
   * From the server's counters: ready = undelivered on `ready`, inFlight = delivered and
   * unacked on `ready` (a lease that expired counts until it is delivered again),
   * delayed = everything on `delayed`. The oldest age is read from the work stream's
   * first message.
   */
  stats(): Promise<QueueStats> {
    return this.guard('stats', async () => {
      const { workStream, readyConsumer, delayedConsumer } = this.layout;
      const [ready, delayed, work, deadLettered] = await Promise.all([
        this.jsm.consumers.info(workStream, readyConsumer),
        this.jsm.consumers.info(workStream, delayedConsumer),
        this.jsm.streams.info(workStream),
        this.dead.count(),
      ]);
      let oldestAgeMs = 0;
      if (work.state.messages > 0) {
        const first = await this.jsm.streams.getMessage(workStream, { seq: work.state.first_seq });
        const enqueuedAt = readTaskMeta(first?.header)?.enqueuedAt ?? Date.parse(work.state.first_ts);
        oldestAgeMs = Math.max(0, Date.now() - enqueuedAt);
      }
      return {
        ready: ready.num_pending,
        inFlight: ready.num_ack_pending,
        delayed: delayed.num_pending + delayed.num_ack_pending,
        deadLettered,
        oldestAgeMs,
      };
    });
  }

  pending(dedupeId: string): Promise<boolean> {
    return this.guard('pending', async () => {
      const state = (await this.records.get(dedupeId))?.record.state;
      return state === 'queued' || state === 'delayed' || state === 'leased';
    });
  }

  /** Newest first. */
  deadLetters(limit: number): Promise<DeadLetter[]> {
    if (!Number.isInteger(limit) || limit < 0) {
      return Promise.reject(new ArteriaError('CONFIG_INVALID', `limit must be an integer >= 0, got ${limit}`));
    }
    return this.guard('deadLetters', () => this.dead.newest(limit));
  }

  findDeadLetter(taskId: string): Promise<DeadLetter | undefined> {
    return this.guard('findDeadLetter', () => this.dead.find(taskId));
  }

  removeDeadLetter(taskId: string): Promise<boolean> {
    return this.guard('removeDeadLetter', () => this.dead.remove(taskId));
  }

  /** Ends waiting leases with [], stops the announcements, closes the connection; memoised (CLOSE_FAILED names each failed step). */
  close(): Promise<void> {
    return this.life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs an operation on a lease; 'lost' (or a token that is not ours) becomes LEASE_LOST. */
  private onLease(operation: string, lease: Lease, fn: (token: LeaseToken) => Promise<'done' | 'lost'>): Promise<void> {
    return this.guard(operation, async () => {
      const token = this.leaser.parseToken(lease.token);
      if (!token || (await fn(token)) === 'lost') {
        throw new ArteriaError(
          'LEASE_LOST',
          `cannot ${operation} task ${lease.taskId}: its lease expired and passed to another worker, or the task is already done`,
        );
      }
    });
  }

  /** Runs one operation, mapping engine failures to QUEUE_UNAVAILABLE (retryable). */
  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    // A closed queue is unavailable (retryable: the caller's work is retried elsewhere); the cause says why.
    if (this.closed) throw new ArteriaError('QUEUE_UNAVAILABLE', `${operation}: the queue is closed`, { cause: this.life.illegal(operation) });
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      throw natsOutageError(this.config.servers, `queue ${operation}`, err);
    }
  }

  /** Removes a message that lost the dedupe race; if that fails, leasers drop it as a stray. */
  private async dropMessage(seq: number): Promise<void> {
    try {
      await this.jsm.streams.deleteMessage(this.layout.workStream, seq, false);
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
    }
  }

  private sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return this.waiters.sleep(ms, signal);
  }

  /** Wakes up to `limit` waiting leasers, longest waiting first. */
  private wake(limit = Infinity): void {
    this.wakes++;
    this.waiters.wake(limit);
  }
}

function checkPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) throw new ArteriaError('CONFIG_INVALID', `${name} must be > 0, got ${value}`);
}

