import { randomUUID } from 'node:crypto';
import { ArteriaError, Lifecycle } from '@arteria/protocol';
import { LeaseWaiters, type DeadLetter, type EnqueueOptions, type EnqueueResult, type Lease, type LeaseOptions, type QueueStats, type WorkQueue } from '@arteria/ports';
import { openSqlite, type SqliteDatabase } from '@arteria/engine-sqlite';
import { compileSqsWorkQueueOptions, type SqsWorkQueueConfig, type SqsWorkQueueOptions } from './sqs-queue-options.js';
import { SqsTaskRecords, toDeadLetter, type TaskRecord } from './sqs-queue-records.js';
import { SQS_MAX_VISIBILITY_S, SqsWire, isReceiptGone, toSeconds, unavailable, type TaskBody, type TaskMessage } from './sqs-queue-wire.js';
import { SqsDeadLetters, recordOf } from './sqs-dead-letters.js';

const parseToken = (token: string): { generation: number; receiptHandle: string } => {
  const at = token.indexOf(':');
  return { generation: Number(token.slice(0, at)), receiptHandle: token.slice(at + 1) };
};
const leaseLost = (lease: Lease): ArteriaError =>
  new ArteriaError('LEASE_LOST', `the lease on task ${lease.taskId} ran out and passed on, or the task was settled already`);

/**
 * The work queue on Amazon SQS (or any SQS-API server): a standard queue carries the
 * tasks, SQS's visibility timeout makes leases, ChangeMessageVisibility extends and
 * delays them, DeleteMessage acks, and a redrive policy moves a task whose leases keep
 * running out to `<name>-dlq`. What SQS cannot hold (dedupe for the task's life, lease
 * ownership, exact stats, dead letters by task id) is in task records in a SQLite file
 * (SqsTaskRecords); docs/queue-engines.md lists the limits that follow.
 */
export class SqsWorkQueue implements WorkQueue, AsyncDisposable {
  readonly kind = 'sqs';
  readonly config: SqsWorkQueueConfig;
  private readonly wire: SqsWire;
  private readonly db: SqliteDatabase;
  private readonly records: SqsTaskRecords;
  private readonly dead: SqsDeadLetters;
  private readonly waiters = new LeaseWaiters();
  /** Aborts requests still running at close (long polls). */
  private readonly closer = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private sweeping: Promise<void> | undefined;
  /** Bumped when this process makes a task visible (enqueue, nack); see lease(). */
  private localChanges = 0;
  private lastEmpty = { at: 0, changes: -1 };
  private lastSweep = 0;
  private readonly life = new Lifecycle('SQS work queue');

  private constructor(config: SqsWorkQueueConfig) {
    this.config = config;
    // NORMAL: SQS holds the task, and claim() rebuilds a record lost to a power failure from
    // the message. Only a dead letter exists nowhere else: bury() commits it with recordsSynchronous.
    this.db = openSqlite(config.recordsPath, 'NORMAL', 'QUEUE_UNAVAILABLE');
    try {
      this.records = new SqsTaskRecords(this.db, config.name);
    } catch (err) {
      this.db.close();
      throw unavailable(`task records in ${config.recordsPath}`, err);
    }
    this.wire = new SqsWire(config);
    this.dead = new SqsDeadLetters(config, this.db, this.records, this.wire);
    // Closed last-registered-first: long polls are aborted and waiters resume (they see the
    // queue closed and resolve []), requests in flight settle, then the client and the file close.
    this.life.defer('task records file', () => void this.db.close());
    this.life.defer('SQS client', () => this.wire.client.destroy());
    this.life.defer('requests in flight', async () => {
      this.closer.abort();
      this.waiters.wake();
      await Promise.allSettled([...this.inFlight]);
    });
    this.life.begin();
  }

  /** From close() on: the queue takes no more work. */
  private get closed(): boolean {
    return !this.life.running;
  }

  /** Validates the options, opens the records file, and creates the queues when missing. */
  static async open(options: SqsWorkQueueOptions): Promise<SqsWorkQueue> {
    const queue = new SqsWorkQueue(compileSqsWorkQueueOptions(options));
    try {
      await queue.wire.setup();
    } catch (err) {
      await queue.close();
      throw err;
    }
    return queue;
  }

  async enqueue(payload: Buffer, options: EnqueueOptions): Promise<EnqueueResult> {
    this.assertOpen();
    const existing = this.records.get(options.dedupeId);
    if (existing !== undefined) return { enqueued: false, taskId: existing.taskId };
    const now = Date.now();
    const delayMs = options.delayMs ?? 0;
    const task: TaskBody = { v: 1, taskId: randomUUID(), dedupeId: options.dedupeId, sendId: randomUUID(), enqueuedAt: now, payload };
    // Message first, record second: a crash in between leaves a message without a record,
    // which claim() adopts (the body holds all of it). The other order could leave a record
    // that dedupes every resend of a task SQS never got.
    try {
      await this.wire.send(this.wire.workUrl, task, delayMs);
    } catch (err) {
      throw unavailable('SendMessage', err);
    }
    const { inserted, record } = this.records.insert({ ...recordOf(task, now), visibleAt: now + toSeconds(delayMs, Infinity) * 1000 });
    // Lost a race with a concurrent enqueue of the same dedupeId: the message just sent is a stray.
    if (!inserted && record.taskId !== task.taskId) return { enqueued: false, taskId: record.taskId };
    this.localChanges++;
    this.waiters.wake(1);
    return { enqueued: true, taskId: task.taskId };
  }

  async lease(options: LeaseOptions): Promise<Lease[]> {
    const deadline = Date.now() + options.waitMs;
    const visibilityS = toSeconds(options.visibilityMs, SQS_MAX_VISIBILITY_S);
    for (;;) {
      if (this.closed || options.signal?.aborted === true) return [];
      if (Date.now() - this.lastSweep >= this.config.deadLetterSweepMs) await this.sweepDeadLetters();
      const remaining = deadline - Date.now();
      // Long polls in whole seconds; a wait under a second polls briefly instead, so waitMs bounds the wait.
      const waitS = remaining >= 1000 ? Math.min(this.config.longPollSeconds, Math.floor(remaining / 1000)) : 0;
      // Sub-second waits: after an empty short poll, this process asks SQS again only once
      // pollIntervalMs passed or it made a task visible itself (waiting leasers would
      // otherwise poll in a tight loop, each request paid in CPU and SQS requests).
      const idle = waitS === 0 && this.lastEmpty.changes === this.localChanges && Date.now() - this.lastEmpty.at < this.config.pollIntervalMs;
      const changes = this.localChanges;
      const leases = idle ? [] : await this.receiveAndClaim(options, visibilityS, waitS);
      if (!idle && leases.length === 0 && waitS === 0) this.lastEmpty = { at: Date.now(), changes };
      if (leases.length > 0) return leases;
      if (Date.now() >= deadline) return [];
      if (waitS === 0) await this.waiters.sleep(Math.min(this.config.pollIntervalMs, deadline - Date.now()), options.signal);
    }
  }

  /**
   * One ReceiveMessage, then a claim on each message's record. An abort resolves at once
   * with []; the request goes on, and whatever it returns is made visible again at once
   * (aborting the HTTP request instead could leave messages invisible for visibilityMs).
   */
  private async receiveAndClaim(options: LeaseOptions, visibilityS: number, waitS: number): Promise<Lease[]> {
    const work = this.track(
      (async (): Promise<Lease[]> => {
        const messages = await this.wire.receive(this.wire.workUrl, options.max, visibilityS, waitS, this.closer.signal);
        const gone = (): boolean => this.closed || options.signal?.aborted === true;
        const leases: Lease[] = [];
        for (const message of messages) {
          if (gone()) await this.release(message);
          else {
            const lease = await this.claim(message, visibilityS);
            if (lease !== undefined) leases.push(lease);
          }
        }
        if (gone()) {
          for (const lease of leases) await this.unclaim(lease);
          return [];
        }
        return leases;
      })(),
    ).catch((err: unknown) => {
      if (this.closed) return [];
      throw unavailable('ReceiveMessage', err);
    });
    const signal = options.signal;
    if (signal === undefined) return work;
    return Promise.race([work, new Promise<Lease[]>((resolve) => (signal.aborted ? resolve([]) : signal.addEventListener('abort', () => resolve([]), { once: true })))]);
  }

  /** Makes a received message the lease of its task, or settles it if it is not the task's live message. */
  private async claim(message: TaskMessage, visibilityS: number): Promise<Lease | undefined> {
    const now = Date.now();
    const task = message.task;
    if (task === undefined) {
      await this.dead.buryForeign(this.wire.workUrl, message);
      return undefined;
    }
    // No record: the enqueuing process stopped between send and record (or is about to write it).
    const record = this.records.get(task.dedupeId) ?? this.records.insert(recordOf(task, now)).record;
    const live = record.taskId === task.taskId && record.sendId === task.sendId;
    if (!live || record.state === 'done' || record.state === 'dead') {
      // A stray copy, or a message whose ack did not reach SQS: nothing to deliver.
      await this.dead.deleteQuietly(this.wire.workUrl, message.receiptHandle);
      return undefined;
    }
    if (record.state === 'queued' && record.visibleAt > now + 1000) {
      // Held back longer than SQS can delay in one step: hide it again, not a delivery.
      await this.wire.changeVisibility(this.wire.workUrl, message.receiptHandle, toSeconds(record.visibleAt - now, SQS_MAX_VISIBILITY_S));
      return undefined;
    }
    if (record.deliveries >= this.config.maxDeliveries) {
      this.dead.bury(record, task.payload, `max deliveries (${this.config.maxDeliveries}) exceeded: ${record.lastReason ?? 'its leases ran out'}`);
      await this.dead.deleteQuietly(this.wire.workUrl, message.receiptHandle);
      return undefined;
    }
    const next: TaskRecord = { ...record, state: 'leased', generation: record.generation + 1, deliveries: record.deliveries + 1, visibleAt: now + visibilityS * 1000, updatedAt: now };
    if (!this.records.replace(next, record.generation)) {
      await this.release(message);
      return undefined;
    }
    return {
      taskId: record.taskId,
      dedupeId: record.dedupeId,
      payload: task.payload,
      deliveries: next.deliveries,
      enqueuedAt: record.enqueuedAt,
      token: `${next.generation}:${message.receiptHandle}`,
    };
  }

  /** Gives back a lease nobody took (the caller aborted meanwhile): not a delivery. */
  private async unclaim(lease: Lease): Promise<void> {
    const { generation, receiptHandle } = parseToken(lease.token);
    const record = this.records.get(lease.dedupeId);
    if (record === undefined || record.generation !== generation) return;
    const now = Date.now();
    this.records.replace({ ...record, state: 'queued', generation: generation + 1, deliveries: record.deliveries - 1, visibleAt: now, updatedAt: now }, generation);
    await this.wire.changeVisibility(this.wire.workUrl, receiptHandle, 0).catch((err: unknown) => {
      if (!isReceiptGone(err)) throw err;
    });
  }

  private async release(message: TaskMessage): Promise<void> {
    await this.wire.changeVisibility(this.wire.workUrl, message.receiptHandle, 0).catch((err: unknown) => {
      if (!isReceiptGone(err)) throw err;
    });
  }

  /** The task's record if `lease` still holds it. */
  private holder(lease: Lease): { record: TaskRecord; receiptHandle: string } {
    this.assertOpen();
    const { generation, receiptHandle } = parseToken(lease.token);
    const record = this.records.get(lease.dedupeId);
    if (record === undefined || record.taskId !== lease.taskId || record.generation !== generation || record.state !== 'leased') throw leaseLost(lease);
    return { record, receiptHandle };
  }

  async extend(lease: Lease, visibilityMs: number): Promise<void> {
    const { record, receiptHandle } = this.holder(lease);
    const seconds = toSeconds(visibilityMs, SQS_MAX_VISIBILITY_S);
    try {
      await this.wire.changeVisibility(this.wire.workUrl, receiptHandle, seconds);
    } catch (err) {
      throw isReceiptGone(err) ? leaseLost(lease) : unavailable('ChangeMessageVisibility', err);
    }
    // Same generation: the lease's token stays valid.
    if (!this.records.replace({ ...record, visibleAt: Date.now() + seconds * 1000, updatedAt: Date.now() }, record.generation)) throw leaseLost(lease);
  }

  async ack(lease: Lease): Promise<void> {
    const { record, receiptHandle } = this.holder(lease);
    const now = Date.now();
    if (!this.records.replace({ ...record, state: 'done', generation: record.generation + 1, updatedAt: now }, record.generation)) throw leaseLost(lease);
    try {
      await this.wire.delete(this.wire.workUrl, receiptHandle);
    } catch (err) {
      // The ack stands (the record says done): a message left behind comes back after its
      // visibility and claim() deletes it then. Only an unreachable SQS is worth reporting.
      if (!isReceiptGone(err)) throw unavailable('DeleteMessage (the ack itself is recorded)', err);
    }
  }

  async nack(lease: Lease, options: { delayMs: number; reason: string }): Promise<void> {
    const { record, receiptHandle } = this.holder(lease);
    if (record.deliveries >= this.config.maxDeliveries) {
      await this.deadLetterHeld(lease, record, receiptHandle, `max deliveries (${this.config.maxDeliveries}) exceeded; last failure: ${options.reason}`);
      return;
    }
    const seconds = toSeconds(options.delayMs, Infinity);
    const now = Date.now();
    const next: TaskRecord = { ...record, state: 'queued', generation: record.generation + 1, visibleAt: now + seconds * 1000, updatedAt: now, lastReason: options.reason };
    if (!this.records.replace(next, record.generation)) throw leaseLost(lease);
    try {
      await this.wire.changeVisibility(this.wire.workUrl, receiptHandle, Math.min(seconds, SQS_MAX_VISIBILITY_S));
    } catch (err) {
      // Gone: the lease had run out on the server, so SQS delivers it again anyway (claim() keeps the delay).
      if (!isReceiptGone(err)) throw unavailable('ChangeMessageVisibility', err);
    }
    if (seconds === 0) {
      this.localChanges++;
      this.waiters.wake(1);
    }
  }

  async deadLetter(lease: Lease, reason: string): Promise<void> {
    const { record, receiptHandle } = this.holder(lease);
    await this.deadLetterHeld(lease, record, receiptHandle, reason);
  }

  private async deadLetterHeld(lease: Lease, record: TaskRecord, receiptHandle: string, reason: string): Promise<void> {
    if (!this.dead.bury(record, lease.payload, reason)) throw leaseLost(lease);
    await this.wire.delete(this.wire.workUrl, receiptHandle).catch((err: unknown) => {
      if (!isReceiptGone(err)) throw unavailable('DeleteMessage', err);
    });
  }

  /**
   * Takes the tasks the redrive policy moved to `<name>-dlq` into the dead letters. A task
   * moved before its deliveries were used up (receives that leased nothing, such as an
   * abandoned long poll, count for SQS too) goes back to the work queue instead.
   */
  private sweepDeadLetters(): Promise<void> {
    this.sweeping ??= this.track(this.dead.sweep(this.closer.signal))
      .catch((err: unknown) => {
        if (!this.closed) throw unavailable('dead-letter sweep', err);
      })
      .finally(() => {
        this.sweeping = undefined;
        this.lastSweep = Date.now();
      });
    return this.sweeping;
  }

  async stats(): Promise<QueueStats> {
    this.assertOpen();
    await this.sweepDeadLetters();
    return this.records.stats(Date.now());
  }

  pending(dedupeId: string): Promise<boolean> {
    this.assertOpen();
    const record = this.records.get(dedupeId);
    return Promise.resolve(record !== undefined && (record.state === 'queued' || record.state === 'leased'));
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    this.assertOpen();
    await this.sweepDeadLetters();
    return this.records.deadLetters(limit);
  }

  async findDeadLetter(taskId: string): Promise<DeadLetter | undefined> {
    this.assertOpen();
    await this.sweepDeadLetters();
    const record = this.records.findDead(taskId);
    return record === undefined ? undefined : toDeadLetter(record);
  }

  async removeDeadLetter(taskId: string): Promise<boolean> {
    this.assertOpen();
    await this.sweepDeadLetters();
    const record = this.records.findDead(taskId);
    if (record === undefined) return false;
    // Kept as done: the dedupeId goes on deduping for dedupeRetentionMs.
    return this.records.replace({ ...record, state: 'done', generation: record.generation + 1, updatedAt: Date.now(), deadPayload: null }, record.generation);
  }

  /** Aborts long polls, lets requests in flight settle, closes the client and the records file; memoised (CLOSE_FAILED names each failed step). */
  close(): Promise<void> {
    return this.life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  private assertOpen(): void {
    // A closed queue is unavailable (retryable: the caller's work is retried elsewhere); the cause says why.
    if (this.closed) throw new ArteriaError('QUEUE_UNAVAILABLE', `SQS work queue ${this.config.name} is closed`, { cause: this.life.illegal('use it') });
  }
}
