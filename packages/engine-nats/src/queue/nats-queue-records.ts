import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { ArteriaError } from '@arteria/protocol';
import { JS_ERROR, isJetStreamError } from '../jetstream.js';

/**
 * Arteria's own record of each task, one message per task in a stream that keeps only
 * the last message per subject (a key-value bucket). It is the truth the work stream
 * cannot hold:
 * - dedupe beyond JetStream's `Nats-Msg-Id` window: the record lives for the stream's
 *   max age (`dedupeRetentionMs`), keyed by a hash of the dedupeId;
 * - lease ownership: the record's revision (its stream sequence) is in the lease token,
 *   and every change to a lease is a compare-and-set on it, so a stale holder fails with
 *   LEASE_LOST (the server itself accepts an ack from any earlier delivery);
 * - which message is the task now (`msgSeq`): a nack with delay moves the task to a new
 *   message; any other message claiming the task is a stray copy and is dropped.
 */
export const TaskRecord = z.strictObject({
  taskId: z.string(),
  dedupeId: z.string(),
  msgSeq: z.number().int(),
  state: z.enum(['queued', 'delayed', 'leased', 'done', 'dead']),
  /** Deliveries handed to leasers so far (deferrals of delayed tasks do not count). */
  deliveries: z.number().int().min(0),
  enqueuedAt: z.number(),
  lastReason: z.string().optional(),
  deadReason: z.string().optional(),
  deadAt: z.number().optional(),
});
export type TaskRecord = z.infer<typeof TaskRecord>;

export interface StoredRecord {
  record: TaskRecord;
  revision: number;
}

export class TaskRecords {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly subjectPrefix: string,
    private readonly timeoutMs: number,
  ) {}

  subjectOf(dedupeId: string): string {
    return `${this.subjectPrefix}.${createHash('sha256').update(dedupeId).digest('hex')}`;
  }

  async get(dedupeId: string): Promise<StoredRecord | undefined> {
    const stored = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subjectOf(dedupeId) });
    if (!stored) return undefined;
    const parsed = TaskRecord.safeParse(stored.json());
    if (!parsed.success || parsed.data.dedupeId !== dedupeId) {
      throw new ArteriaError('QUEUE_UNAVAILABLE', `task record for ${JSON.stringify(dedupeId)} in ${this.stream} is not readable`);
    }
    return { record: parsed.data, revision: stored.seq };
  }

  /** Writes `record` if the current revision is `expected` (0: no record yet); undefined when it is not. */
  async put(record: TaskRecord, expected: number): Promise<number | undefined> {
    try {
      const ack = await this.js.publish(this.subjectOf(record.dedupeId), JSON.stringify(record), {
        expect: { lastSubjectSequence: expected },
        timeout: this.timeoutMs,
      });
      return ack.seq;
    } catch (err) {
      if (isJetStreamError(err, JS_ERROR.wrongLastSequence)) return undefined;
      throw err;
    }
  }
}
