import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { ArteriaError } from '@arteria/protocol';
import { nanos } from '../jetstream.js';

/**
 * The few JetStream wire operations the queue needs below the client library: a
 * `no_wait` pull (answered at once, so an abandoned long poll leaves no waiting request
 * on the server that could swallow a task), and acknowledgements sent by reply subject,
 * which any queue instance can do for a lease it did not create.
 */

/** Headers on task messages. Values are ASCII (dedupe ids are URI-encoded). */
export const H = {
  dedupeId: 'Arteria-Dedupe-Id',
  taskId: 'Arteria-Task-Id',
  enqueuedAt: 'Arteria-Enqueued-At',
  notBefore: 'Arteria-Not-Before',
  movedFrom: 'Arteria-Moved-From',
  movedAtRevision: 'Arteria-Moved-At-Revision',
} as const;

export interface TaskMeta {
  /** Absent on a task's first message: its task id is then its own stream sequence. */
  taskId?: string;
  dedupeId: string;
  enqueuedAt: number;
  notBefore?: number;
  /**
   * On a message that replaces another (a nack with delay, a delayed task made ready):
   * the message it replaces and the record revision its mover read. Until the mover's
   * record write lands, the record still points at `from` at that revision.
   */
  moved?: { from: number; atRevision: number };
}

export function taskHeaders(meta: TaskMeta): MsgHdrs {
  const h = headers();
  h.set(H.dedupeId, encodeURIComponent(meta.dedupeId));
  h.set(H.enqueuedAt, String(meta.enqueuedAt));
  if (meta.taskId !== undefined) h.set(H.taskId, meta.taskId);
  if (meta.notBefore !== undefined) h.set(H.notBefore, String(meta.notBefore));
  if (meta.moved !== undefined) {
    h.set(H.movedFrom, String(meta.moved.from));
    h.set(H.movedAtRevision, String(meta.moved.atRevision));
  }
  return h;
}

/** Reads a task message's headers; undefined for a message Arteria did not write. */
export function readTaskMeta(h: MsgHdrs | undefined): TaskMeta | undefined {
  if (!h?.has(H.dedupeId)) return undefined;
  const enqueuedAt = Number(h.get(H.enqueuedAt));
  const notBefore = h.has(H.notBefore) ? Number(h.get(H.notBefore)) : undefined;
  let dedupeId: string;
  try {
    dedupeId = decodeURIComponent(h.get(H.dedupeId));
  } catch {
    return undefined; // not our encoding: treated like a foreign message
  }
  const from = Number(h.get(H.movedFrom));
  const atRevision = Number(h.get(H.movedAtRevision));
  const moved = h.has(H.movedFrom) && Number.isSafeInteger(from) && Number.isSafeInteger(atRevision) ? { from, atRevision } : undefined;
  return {
    dedupeId,
    enqueuedAt: Number.isFinite(enqueuedAt) ? enqueuedAt : 0,
    ...(h.has(H.taskId) ? { taskId: h.get(H.taskId) } : {}),
    ...(notBefore !== undefined && Number.isFinite(notBefore) ? { notBefore } : {}),
    ...(moved === undefined ? {} : { moved }),
  };
}

/** A delivered message: its stream sequence comes from the ack subject. */
export interface Delivered {
  msg: Msg;
  seq: number;
  reply: string;
}

/** `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (and the longer v2 form). */
export function streamSeqOf(reply: string): number | undefined {
  const tokens = reply.split('.');
  if (tokens[0] !== '$JS' || tokens[1] !== 'ACK') return undefined;
  const at = tokens.length === 9 ? 5 : tokens.length >= 11 ? 7 : -1;
  const seq = Number(tokens[at]);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}

/** Pulls up to `batch` messages that are deliverable now; never waits on the server. */
export function pullNow(
  nc: NatsConnection,
  target: { stream: string; consumer: string; batch: number; timeoutMs: number; signal: AbortSignal },
): Promise<Delivered[]> {
  const { stream, consumer, batch, timeoutMs, signal } = target;
  return new Promise((resolve, reject) => {
    const got: Delivered[] = [];
    const inbox = createInbox();
    const onAbort = (): void => finish(new ArteriaError('QUEUE_UNAVAILABLE', `pull from ${stream}/${consumer}: the queue is closed`));
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sub.unsubscribe();
      if (error) reject(error);
      else resolve(got);
    };
    const timer = setTimeout(
      () => finish(new ArteriaError('QUEUE_UNAVAILABLE', `pull from ${stream}/${consumer}: NATS JetStream did not answer in ${timeoutMs} ms; check that nats-server is running and reachable with JetStream enabled (retrying)`)),
      timeoutMs,
    );
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return finish(new ArteriaError('QUEUE_UNAVAILABLE', `pull from ${stream}/${consumer}: ${err.message}`, { cause: err }));
        const code = msg.headers?.code ?? 0;
        if (code > 0 && msg.data.length === 0) {
          // 404 no messages, 408 batch not filled: the end of a no_wait answer.
          if (code === 404 || code === 408) return finish();
          return finish(new ArteriaError('QUEUE_UNAVAILABLE', `pull from ${stream}/${consumer}: ${code} ${msg.headers?.description ?? ''}`));
        }
        const seq = msg.reply ? streamSeqOf(msg.reply) : undefined;
        if (seq !== undefined && msg.reply) got.push({ msg, seq, reply: msg.reply });
        if (got.length >= batch) finish();
      },
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify({ batch, no_wait: true }), { reply: inbox });
  });
}

/**
 * Acknowledgement kinds. `+ACK` and `+TERM` remove the message from a work-queue stream;
 * `-NAK {"delay"}` keeps it pending and makes it deliverable again after the delay, which
 * is how a lease sets its own visibility. The server confirms each one (double ack).
 */
export type AckKind = { kind: 'ack' } | { kind: 'term' } | { kind: 'nak'; delayMs: number };

export async function acknowledge(nc: NatsConnection, reply: string, ack: AckKind, timeoutMs: number): Promise<void> {
  const body =
    ack.kind === 'ack' ? '+ACK' : ack.kind === 'term' ? '+TERM' : `-NAK ${JSON.stringify({ delay: nanos(Math.max(0, Math.ceil(ack.delayMs))) })}`;
  await nc.request(reply, body, { timeout: timeoutMs });
}
