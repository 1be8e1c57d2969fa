import { z } from 'zod';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetter } from './work-queue.js';

/** One dead letter as stored in the dead-letter stream (JSON; the payload in base64). */
const StoredDeadLetter = z.strictObject({
  taskId: z.string(),
  dedupeId: z.string(),
  deliveries: z.number().int(),
  reason: z.string(),
  at: z.number(),
  enqueuedAt: z.number(),
  payload: z.string(),
});

/** The dead-letter stream: Limits retention, newest last, kept `deadLetterRetentionMs`. */
export class DeadLetterStream {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly subject: string,
    private readonly timeoutMs: number,
  ) {}

  /** Idempotent per task within the duplicate window (`Nats-Msg-Id`). */
  async add(letter: DeadLetter & { enqueuedAt: number }): Promise<void> {
    const body = { ...letter, payload: letter.payload.toString('base64') };
    await this.js.publish(this.subject, JSON.stringify(body), { msgID: `dead.${letter.taskId}`, timeout: this.timeoutMs });
  }

  async count(): Promise<number> {
    return (await this.jsm.streams.info(this.stream)).state.messages;
  }

  /** Newest first. Reads one message per letter: meant for operators, not hot paths. */
  async newest(limit: number): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    if (limit === 0) return letters;
    const { first_seq: first, last_seq: last, messages } = (await this.jsm.streams.info(this.stream)).state;
    if (messages === 0) return letters;
    for (let seq = last; seq >= first && seq > 0 && letters.length < limit; seq--) {
      const stored = await this.jsm.streams.getMessage(this.stream, { seq });
      if (!stored) continue; // deleted by an operator
      const parsed = StoredDeadLetter.safeParse(stored.json());
      if (!parsed.success) continue; // not written by Arteria
      const { enqueuedAt: _enqueuedAt, payload, ...rest } = parsed.data;
      letters.push({ ...rest, payload: Buffer.from(payload, 'base64') });
    }
    return letters;
  }
}
