import { randomUUID } from 'node:crypto';
import type { SqliteDatabase } from '@arteria/engine-sqlite';
import type { SqsWorkQueueConfig } from './sqs-queue-options.js';
import type { SqsTaskRecords, TaskRecord } from './sqs-queue-records.js';
import { isReceiptGone, type SqsWire, type TaskBody, type TaskMessage } from './sqs-queue-wire.js';

/** A fresh record for a task just sent (or found on the queue without one). */
export function recordOf(task: TaskBody, now: number): TaskRecord {
  return {
    dedupeId: task.dedupeId, taskId: task.taskId, sendId: task.sendId, state: 'queued', generation: 0, deliveries: 0,
    enqueuedAt: task.enqueuedAt, visibleAt: now, updatedAt: now, lastReason: null, deadReason: null, deadAt: null, deadPayload: null,
  };
}

/**
 * The SQS queue's dead letters: the records that hold them (committed with
 * `recordsSynchronous`, since a dead letter exists nowhere else) and the sweep of the
 * redrive policy's `<name>-dlq` into them.
 */
export class SqsDeadLetters {
  constructor(
    private readonly config: SqsWorkQueueConfig,
    private readonly db: SqliteDatabase,
    private readonly records: SqsTaskRecords,
    private readonly wire: SqsWire,
  ) {}

  /** A message Arteria did not send: kept as a dead letter (its body as the payload), not lost. */
  async buryForeign(url: string, message: TaskMessage): Promise<void> {
    const now = Date.now();
    const id = randomUUID();
    const body: TaskBody = { v: 1, taskId: id, dedupeId: `sqs-foreign:${id}`, sendId: id, enqueuedAt: now, payload: Buffer.from(message.raw, 'utf8') };
    const { record } = this.records.insert(recordOf(body, now));
    this.bury(record, body.payload, 'not a task Arteria sent (unreadable message body)');
    await this.deleteQuietly(url, message.receiptHandle);
  }

  /** Deletes a message; one already gone is what was wanted. */
  async deleteQuietly(url: string, receiptHandle: string): Promise<void> {
    try {
      await this.wire.delete(url, receiptHandle);
    } catch (err) {
      if (!isReceiptGone(err)) throw err;
    }
  }

  /** Makes the record a dead letter holding the payload; false when it changed meanwhile. */
  bury(record: TaskRecord, payload: Buffer, reason: string): boolean {
    const now = Date.now();
    this.db.pragma(`synchronous = ${this.config.recordsSynchronous}`);
    try {
      return this.records.replace({ ...record, state: 'dead', generation: record.generation + 1, updatedAt: now, deadReason: reason, deadAt: now, deadPayload: payload }, record.generation);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /**
   * One pass over `<name>-dlq`: a task the redrive policy moved there with its deliveries
   * used up becomes a dead letter; one moved before (receives that leased nothing count for
   * SQS too) goes back to the work queue; a message Arteria did not send is kept.
   */
  async sweep(signal: AbortSignal): Promise<void> {
    this.records.prune(Date.now() - this.config.dedupeRetentionMs);
    for (;;) {
      const messages = await this.wire.receive(this.wire.deadUrl, 10, 30, 0, signal);
      if (messages.length === 0) return;
      for (const message of messages) {
        const task = message.task;
        const record = task === undefined ? undefined : this.records.get(task.dedupeId);
        const live = task !== undefined && record !== undefined && record.taskId === task.taskId && record.sendId === task.sendId;
        if (live && (record.state === 'queued' || record.state === 'leased')) {
          if (record.deliveries >= this.config.maxDeliveries) {
            this.bury(record, task.payload, `max deliveries (${this.config.maxDeliveries}) exceeded: ${record.lastReason ?? 'its leases ran out'}`);
          } else {
            // Send first, then point the record at the new send: a crash in between leaves the
            // dead-letter message in place for the next sweep, and the new copy is a stray.
            const again: TaskBody = { ...task, sendId: randomUUID() };
            await this.wire.send(this.wire.workUrl, again, 0);
            this.records.replace({ ...record, sendId: again.sendId, state: 'queued', generation: record.generation + 1, visibleAt: Date.now(), updatedAt: Date.now() }, record.generation);
          }
        } else if (task === undefined) {
          await this.buryForeign(this.wire.deadUrl, message);
          continue;
        }
        await this.deleteQuietly(this.wire.deadUrl, message.receiptHandle);
      }
    }
  }
}
