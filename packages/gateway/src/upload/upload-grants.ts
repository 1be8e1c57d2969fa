import { randomUUID } from 'node:crypto';
import { ArteriaError, GrantAnswerV1, encodePayload, isErrorCode, type GrantRequestV1 } from '@arteria/protocol';
import { Questions } from '../connection/questions.js';

export type GrantQuestion = Omit<GrantRequestV1, 'v' | 'kind' | 'id'>;
export type GrantAnswer = GrantAnswerV1;

/**
 * Upload grants from the platform: the gateway asks on its own requests topic for
 * presigned URLs for one object key, and the answer comes back among its results. The
 * gateway holds no object-store credentials.
 */
export class UploadGrants {
  readonly #questions: Questions<typeof GrantAnswerV1>;
  readonly #timeoutMs: number;

  /** `publish`: sends on the device's requests topic; `timeoutMs`: how long to wait for each answer. */
  constructor(publish: (payload: Buffer) => Promise<void>, timeoutMs: number) {
    this.#questions = new Questions({ kind: 'grant-answer', schema: GrantAnswerV1, questionId: (answer) => answer.grantId }, publish);
    this.#timeoutMs = timeoutMs;
  }

  /** Takes a message from the results topic if it is a grant answer (true), so the result handler can skip it. */
  take(payload: Buffer): boolean {
    return this.#questions.take(payload);
  }

  /**
   * Asks for a grant; resolves with its URLs, or throws the platform's refusal
   * (NOT_AUTHORIZED, OBJECT_EXISTS, ...) or GRANT_UNAVAILABLE when no answer comes in time.
   */
  async ask(question: GrantQuestion, signal?: AbortSignal): Promise<GrantAnswerV1> {
    const request: GrantRequestV1 = { v: 1, kind: 'grant', id: randomUUID(), ...question };
    const answer = await this.#questions.ask(request.id, encodePayload(request), this.#timeoutMs, signal);
    if (answer === undefined) throw new ArteriaError('GRANT_UNAVAILABLE', `the platform did not answer the upload grant request for ${question.key} within ${this.#timeoutMs} ms`);
    if (answer.error !== undefined) {
      const code = answer.error.code;
      throw new ArteriaError(isErrorCode(code) ? code : 'GRANT_UNAVAILABLE', `upload grant for ${question.key} refused: ${answer.error.message}`);
    }
    return answer;
  }
}
