import { z } from 'zod';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetter } from '@arteria/ports';

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
    for await (const { letter } of this.scan()) {
      letters.push(letter);
      if (letters.length >= limit) break;
    }
    return letters;
  }

  /** Newest copy first: a letter re-added after its duplicate window is the same task. */
  async find(taskId: string): Promise<DeadLetter | undefined> {
    for await (const { letter } of this.scan()) if (letter.taskId === taskId) return letter;
    return undefined;
  }

  /** Deletes every stored copy of the task's letter; false when there was none. */
  async remove(taskId: string): Promise<boolean> {
    let removed = false;
    for await (const { letter, seq } of this.scan()) {
      if (letter.taskId !== taskId) continue;
      removed = (await this.jsm.streams.deleteMessage(this.stream, seq, false)) || removed;
    }
    return removed;
  }

  /** Walks the stream from its last message back, skipping deleted and foreign messages. */
  private async *scan(): AsyncGenerator<{ letter: DeadLetter; seq: number }> {
    const { first_seq: first, last_seq: last, messages } = (await this.jsm.streams.info(this.stream)).state;
    if (messages === 0) return;
    for (let seq = last; seq >= first && seq > 0; seq--) {
      const stored = await this.jsm.streams.getMessage(this.stream, { seq });
      if (!stored) continue; // deleted: replayed or removed by an operator
      const parsed = StoredDeadLetter.safeParse(stored.json());
      if (!parsed.success) continue; // not written by Arteria
      const { payload, ...rest } = parsed.data;
      yield { letter: { ...rest, payload: Buffer.from(payload, 'base64') }, seq };
    }
  }
}
