import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { ArteriaError } from '@arteria/protocol';
import type { DeadLetterStream } from './nats-queue-dead-letters.js';
import type { NatsWorkQueueConfig } from './nats-queue-options.js';
import type { TaskRecord, TaskRecords } from './nats-queue-records.js';
import type { NatsQueueLayout } from './nats-queue-setup.js';
import { acknowledge, pullNow, readTaskMeta, streamSeqOf, taskHeaders, type AckKind, type Delivered, type TaskMeta } from './nats-queue-wire.js';
import type { Lease } from '@arteria/ports';

/** A lease token: the record revision it was granted at, and the message's ack subject. */
export interface LeaseToken {
  revision: number;
  reply: string;
  seq: number;
}

export interface LeaserDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  config: NatsWorkQueueConfig;
  layout: NatsQueueLayout;
  records: TaskRecords;
  dead: DeadLetterStream;
  /** Aborts when the queue closes: pulls in progress end at once. */
  closed: AbortSignal;
}

/** Delayed tasks pulled (and deferred, or moved to `ready`) per look. */
const DELAYED_BATCH = 64;
/**
 * Idle looks at the delayed consumer happen this many poll intervals apart: every
 * delayed publish announces its due time to all processes, so the idle look only
 * covers tasks delayed before this process started.
 */
const DELAYED_IDLE_POLLS = 10;
/** Compare-and-set retries before an operation gives up with QUEUE_UNAVAILABLE. */
const CAS_ATTEMPTS = 4;

/**
 * The record-guarded half of the JetStream queue: turning delivered messages into leases,
 * moving due delayed tasks to `ready`, and the lease transitions that replace a message
 * (nack with delay, dead-letter). Every change is a compare-and-set on the task record.
 */
export class NatsLeaser {
  private nextDelayedLookAt = 0;
  /** Due times noted while a look is in progress (it would overwrite them). */
  private notedDuringLook = Infinity;
  private promoting: Promise<void> | undefined;

  constructor(private readonly deps: LeaserDeps) {}

  /** A delayed task becomes due at `at` (ms): look at the delayed consumer by then. */
  noteDelayed(at: number): void {
    this.nextDelayedLookAt = Math.min(this.nextDelayedLookAt, at);
    if (this.promoting) this.notedDuringLook = Math.min(this.notedDuringLook, at);
  }

  /**
   * Tells waiting leasers in every process that a task was stored: on `ready` (no
   * argument) or on `delayed`, due at `dueAt`. Sent only after the stream acknowledged
   * the task, so a woken leaser's pull finds it (the raw publish on the stream subject
   * can reach subscribers before the stream has stored it).
   */
  announce(dueAt?: number): void {
    if (this.deps.nc.isClosed()) return; // the task is stored; leasers elsewhere find it by polling
    this.deps.nc.publish(this.deps.layout.wakeSubject, dueAt === undefined ? '' : String(dueAt));
  }

  /** How long a waiting leaser may sleep before pulling again. */
  nextLookMs(): number {
    const poll = this.deps.config.pollIntervalMs;
    return Math.max(1, Math.min(poll, this.nextDelayedLookAt - Date.now()));
  }

  parseToken(token: string): LeaseToken | undefined {
    const space = token.indexOf(' ');
    const revision = Number(token.slice(0, space));
    const reply = token.slice(space + 1);
    const seq = streamSeqOf(reply);
    if (space < 1 || !Number.isSafeInteger(revision) || revision < 1 || seq === undefined) return undefined;
    return { revision, reply, seq };
  }

  recordOf(lease: Lease, token: LeaseToken): Omit<TaskRecord, 'state'> {
    const { taskId, dedupeId, deliveries, enqueuedAt } = lease;
    return { taskId, dedupeId, msgSeq: token.seq, deliveries, enqueuedAt };
  }

  /** Leases up to `max` tasks that are ready now. */
  async leaseNow(max: number, visibilityMs: number): Promise<Lease[]> {
    if (Date.now() >= this.nextDelayedLookAt) await this.promoteDue();
    const { nc, layout, config, closed } = this.deps;
    // Strays and finished tasks are dropped on the way; pull again while that happens.
    for (let round = 0; round < 5; round++) {
      const pulled = await pullNow(nc, {
        stream: layout.workStream,
        consumer: layout.readyConsumer,
        batch: max,
        timeoutMs: config.requestTimeoutMs,
        signal: closed,
      });
      const leases = (await Promise.all(pulled.map((d) => this.claim(d, visibilityMs)))).filter((l): l is Lease => l !== undefined);
      if (leases.length > 0 || pulled.length === 0) return leases;
    }
    return [];
  }

  /** nack: back to `ready` now, or to `delayed` as a new message that the record points at. */
  async requeue(lease: Lease, token: LeaseToken, delayMs: number, reason: string): Promise<'done' | 'lost'> {
    const { js, records, layout, config } = this.deps;
    const base = this.recordOf(lease, token);
    if (delayMs === 0) {
      if ((await records.put({ ...base, state: 'queued', lastReason: reason }, token.revision)) === undefined) return 'lost';
      await this.ackMsg(token.reply, { kind: 'nak', delayMs: 0 });
      this.announce();
      return 'done';
    }
    const notBefore = Date.now() + delayMs;
    const moved = await js.publish(layout.delayedSubject, lease.payload, {
      msgID: `nack.${lease.taskId}.${lease.deliveries}`,
      headers: taskHeaders({ taskId: lease.taskId, dedupeId: lease.dedupeId, enqueuedAt: lease.enqueuedAt, notBefore, moved: { from: token.seq, atRevision: token.revision } }),
      timeout: config.requestTimeoutMs,
    });
    if ((await records.put({ ...base, msgSeq: moved.seq, state: 'delayed', lastReason: reason }, token.revision)) === undefined) {
      // A promoter that met the copy first may have written this very move for us.
      if ((await records.get(lease.dedupeId))?.record.msgSeq === moved.seq) {
        this.announce(notBefore);
        await this.ackMsg(token.reply, { kind: 'term' });
        return 'done';
      }
      // The copy is a stray now: whoever pulls it drops it.
      return 'lost';
    }
    this.announce(notBefore);
    await this.ackMsg(token.reply, { kind: 'term' });
    return 'done';
  }

  async deadLetter(lease: Lease, token: LeaseToken, reason: string): Promise<'done' | 'lost'> {
    const record: TaskRecord = { ...this.recordOf(lease, token), state: 'dead', deadReason: reason, deadAt: Date.now() };
    if ((await this.deps.records.put(record, token.revision)) === undefined) return 'lost';
    await this.finishDeadLetter(token.reply, record, lease.payload);
    return 'done';
  }

  /** Turns one delivered `ready` message into a lease, or settles it if it is not one. */
  private async claim(d: Delivered, visibilityMs: number): Promise<Lease | undefined> {
    const meta = readTaskMeta(d.msg.headers);
    if (!meta) return this.drop(d, { kind: 'term' }); // not written by Arteria
    const { records, config } = this.deps;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { record, revision } = await this.recordFor(d, meta, 'queued');
      if (record.msgSeq !== d.seq) {
        if (!this.isMoveInFlight(meta, record, revision)) return this.drop(d, { kind: 'term' }); // a stray copy
        // Its mover published it and has not written the record yet: write the move for it (compare-and-set, so one of us wins).
        await records.put({ ...record, msgSeq: d.seq, state: 'queued' }, revision);
        continue;
      }
      if (record.state === 'done') return this.drop(d, { kind: 'ack' }); // acked by a late holder
      if (record.state === 'dead') {
        await this.finishDeadLetter(d.reply, record, Buffer.from(d.msg.data));
        return undefined;
      }
      if (record.deliveries >= config.maxDeliveries) {
        // Its last allowed lease expired without an answer.
        const last = record.state === 'leased' ? 'visibility timeout expired' : (record.lastReason ?? 'visibility timeout expired');
        const reason = `max deliveries (${config.maxDeliveries}) exceeded; last: ${last}`;
        const dead: TaskRecord = { ...record, state: 'dead', deadReason: reason, deadAt: Date.now() };
        if ((await records.put(dead, revision)) === undefined) continue;
        await this.finishDeadLetter(d.reply, dead, Buffer.from(d.msg.data));
        return undefined;
      }
      const leased: TaskRecord = { ...record, state: 'leased', deliveries: record.deliveries + 1 };
      const granted = await records.put(leased, revision);
      if (granted === undefined) continue;
      if (visibilityMs !== config.ackWaitMs) await this.ackMsg(d.reply, { kind: 'nak', delayMs: visibilityMs });
      return {
        taskId: record.taskId,
        dedupeId: record.dedupeId,
        payload: Buffer.from(d.msg.data),
        deliveries: leased.deliveries,
        enqueuedAt: record.enqueuedAt,
        token: `${granted} ${d.reply}`,
      };
    }
    throw new ArteriaError('QUEUE_UNAVAILABLE', `lease: the record of task ${meta.taskId ?? d.seq} keeps changing`);
  }

  /** Moves due delayed tasks to `ready`; defers the others to their due time. One look at a time. */
  private promoteDue(): Promise<void> {
    this.promoting ??= (async () => {
      const { nc, layout, config, closed } = this.deps;
      let next = Date.now() + config.pollIntervalMs * DELAYED_IDLE_POLLS;
      try {
        const pulled = await pullNow(nc, {
          stream: layout.workStream,
          consumer: layout.delayedConsumer,
          batch: DELAYED_BATCH,
          timeoutMs: config.requestTimeoutMs,
          signal: closed,
        });
        for (const d of pulled) {
          const meta = readTaskMeta(d.msg.headers);
          if (!meta) {
            await this.ackMsg(d.reply, { kind: 'term' });
            continue;
          }
          const due = meta.notBefore ?? 0;
          const now = Date.now();
          if (due > now) {
            next = Math.min(next, due);
            await this.ackMsg(d.reply, { kind: 'nak', delayMs: due - now });
          } else {
            await this.promote(d, meta);
          }
        }
        // A full batch may have more behind it.
        if (pulled.length === DELAYED_BATCH) next = Date.now();
      } finally {
        this.nextDelayedLookAt = Math.min(next, this.notedDuringLook);
        this.notedDuringLook = Infinity;
        this.promoting = undefined;
      }
    })();
    return this.promoting;
  }

  private async promote(d: Delivered, meta: TaskMeta): Promise<void> {
    const { js, records, layout, config } = this.deps;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { record, revision } = await this.recordFor(d, meta, 'delayed');
      if (record.msgSeq !== d.seq && this.isMoveInFlight(meta, record, revision)) {
        // A nack's record write has not landed yet: write it for the nacker (compare-and-set), then look again.
        await records.put({ ...record, msgSeq: d.seq, state: 'delayed' }, revision);
        continue;
      }
      if (record.msgSeq !== d.seq || record.state === 'done' || record.state === 'dead') {
        await this.ackMsg(d.reply, { kind: 'term' });
        return;
      }
      // The msgID makes a retried move publish nothing new.
      const moved = await js.publish(layout.readySubject, d.msg.data, {
        msgID: `promote.${record.taskId}.${d.seq}`,
        headers: taskHeaders({ taskId: record.taskId, dedupeId: record.dedupeId, enqueuedAt: record.enqueuedAt, moved: { from: d.seq, atRevision: revision } }),
        timeout: config.requestTimeoutMs,
      });
      // On a failed compare-and-set the next look finds the record moved on (a leaser may have written this move).
      if ((await records.put({ ...record, msgSeq: moved.seq, state: 'queued' }, revision)) === undefined) continue;
      await this.ackMsg(d.reply, { kind: 'ack' });
      this.announce();
      return;
    }
    throw new ArteriaError('QUEUE_UNAVAILABLE', `promote: the record of task ${meta.taskId ?? d.seq} keeps changing`);
  }

  /**
   * Whether the delivered message replaces the one the record points at and its mover's
   * record write has not landed: the record is still at the revision the mover read. A
   * copy whose mover lost its compare-and-set finds the record at another revision and is
   * a stray.
   */
  private isMoveInFlight(meta: TaskMeta, record: TaskRecord, revision: number): boolean {
    return meta.moved !== undefined && meta.moved.from === record.msgSeq && meta.moved.atRevision === revision;
  }

  /** The task's record, or a new one for a message whose record expired or is not written yet. */
  private async recordFor(d: Delivered, meta: TaskMeta, state: 'queued' | 'delayed'): Promise<{ record: TaskRecord; revision: number }> {
    const stored = await this.deps.records.get(meta.dedupeId);
    if (stored) return stored;
    const taskId = meta.taskId ?? String(d.seq);
    return { record: { taskId, dedupeId: meta.dedupeId, msgSeq: d.seq, state, deliveries: 0, enqueuedAt: meta.enqueuedAt }, revision: 0 };
  }

  /** Publishes the dead letter (idempotent per task), then removes the task's message. */
  private async finishDeadLetter(reply: string, record: TaskRecord, payload: Buffer): Promise<void> {
    await this.deps.dead.add({
      taskId: record.taskId,
      dedupeId: record.dedupeId,
      payload,
      deliveries: record.deliveries,
      reason: record.deadReason ?? 'dead-lettered',
      at: record.deadAt ?? Date.now(),
      enqueuedAt: record.enqueuedAt,
    });
    await this.ackMsg(reply, { kind: 'term' });
  }

  private async drop(d: Delivered, kind: AckKind): Promise<undefined> {
    await this.ackMsg(d.reply, kind);
    return undefined;
  }

  private ackMsg(reply: string, kind: AckKind): Promise<void> {
    return acknowledge(this.deps.nc, reply, kind, this.deps.config.requestTimeoutMs);
  }
}
