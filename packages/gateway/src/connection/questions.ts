import type { z } from 'zod';
import { decodePayload, toArteriaError } from '@arteria/protocol';

export interface AnswerKind<S extends z.ZodType> {
  /** The answers' `kind` (`grant-answer`, `probe-answer`): found in the bytes before anything is parsed, so results stay on their fast path. */
  kind: string;
  schema: S;
  /** The id of the question an answer answers. */
  questionId(answer: z.output<S>): string;
}

/**
 * Questions the gateway asks the platform on its own requests topic, whose answers come
 * back among its results (upload grants, admission probes): one MQTT request/answer
 * exchange, matched by question id, with a deadline.
 */
export class Questions<S extends z.ZodType> {
  readonly #kind: AnswerKind<S>;
  readonly #marker: Buffer;
  readonly #publish: (payload: Buffer) => Promise<void>;
  readonly #waiting = new Map<string, (answer: z.output<S>) => void>();

  /** `publish`: sends on the device's requests topic (resolves on the broker's PUBACK). */
  constructor(kind: AnswerKind<S>, publish: (payload: Buffer) => Promise<void>) {
    this.#kind = kind;
    this.#marker = Buffer.from(`"kind":"${kind.kind}"`);
    this.#publish = publish;
  }

  /**
   * Takes a message from the results topic if it is one of these answers (true), so the
   * result handler can skip it. A malformed answer is still consumed: it is no result
   * either, and nobody can be waiting for it (its question times out).
   */
  take(payload: Buffer): boolean {
    if (!payload.includes(this.#marker)) return false;
    let answer: z.output<S>;
    try {
      answer = decodePayload(this.#kind.schema, payload);
    } catch {
      return true;
    }
    this.#waiting.get(this.#kind.questionId(answer))?.(answer);
    return true;
  }

  /**
   * Publishes `question` (whose id is `id`) and resolves with its answer, or with
   * undefined when none came within `timeoutMs`. Rejects when the publish fails or
   * `signal` aborts. The answer may arrive before the PUBACK.
   */
  async ask(id: string, question: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<z.output<S> | undefined> {
    signal?.throwIfAborted();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const answered = new Promise<z.output<S> | undefined>((resolve, reject) => {
      this.#waiting.set(id, resolve);
      timer = setTimeout(() => resolve(undefined), timeoutMs);
      onAbort = () => reject(signal?.reason instanceof Error ? signal.reason : toArteriaError(`aborted: ${String(signal?.reason)}`));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.#publish(question), answered]);
      return await answered;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.#waiting.delete(id);
    }
  }
}
