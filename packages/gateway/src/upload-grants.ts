import { randomUUID } from 'node:crypto';
import { ArteriaError, GrantAnswerV1, decodePayload, encodePayload, isErrorCode, type GrantRequestV1 } from '@arteria/protocol';

/** A grant answer is told apart from a result by this marker before it is parsed (results stay on their fast path). */
const ANSWER_MARKER = Buffer.from('"kind":"grant-answer"');

export type GrantQuestion = Omit<GrantRequestV1, 'v' | 'kind' | 'id'>;
export type GrantAnswer = GrantAnswerV1;

/**
 * Upload grants from the platform: the gateway asks on its own requests topic for
 * presigned URLs for one object key, and the answer comes back among its results. The
 * gateway holds no object-store credentials.
 */
export class UploadGrants {
  readonly #waiting = new Map<string, (answer: GrantAnswerV1) => void>();
  readonly #publish: (payload: Buffer) => Promise<void>;
  readonly #timeoutMs: number;

  /** `publish`: sends on the device's requests topic; `timeoutMs`: how long to wait for each answer. */
  constructor(publish: (payload: Buffer) => Promise<void>, timeoutMs: number) {
    this.#publish = publish;
    this.#timeoutMs = timeoutMs;
  }

  /** Takes a message from the results topic if it is a grant answer (true), so the result handler can skip it. */
  take(payload: Buffer): boolean {
    if (!payload.includes(ANSWER_MARKER)) return false;
    let answer: GrantAnswerV1;
    try {
      answer = decodePayload(GrantAnswerV1, payload);
    } catch {
      return true; // nobody can be waiting for an answer that does not parse; its request times out
    }
    this.#waiting.get(answer.grantId)?.(answer);
    return true;
  }

  /**
   * Asks for a grant; resolves with its URLs, or throws the platform's refusal
   * (NOT_AUTHORIZED, OBJECT_EXISTS, ...) or GRANT_UNAVAILABLE when no answer comes in time.
   */
  async ask(question: GrantQuestion, signal?: AbortSignal): Promise<GrantAnswerV1> {
    signal?.throwIfAborted();
    const request: GrantRequestV1 = { v: 1, kind: 'grant', id: randomUUID(), ...question };
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const answered = new Promise<GrantAnswerV1 | undefined>((resolve, reject) => {
      this.#waiting.set(request.id, resolve);
      timer = setTimeout(() => resolve(undefined), this.#timeoutMs);
      onAbort = () => reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.#publish(encodePayload(request)), answered]);
      const answer = await answered;
      if (answer === undefined) throw new ArteriaError('GRANT_UNAVAILABLE', `the platform did not answer the upload grant request for ${question.key} within ${this.#timeoutMs} ms`);
      if (answer.error !== undefined) {
        const code = answer.error.code;
        throw new ArteriaError(isErrorCode(code) ? code : 'GRANT_UNAVAILABLE', `upload grant for ${question.key} refused: ${answer.error.message}`);
      }
      return answer;
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.#waiting.delete(request.id);
    }
  }
}
