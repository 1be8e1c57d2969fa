import type { SegmentEncoding } from '@arteria/protocol';
import { errorFields, type GatewayLogger } from '../log.js';
import type { AdmissionProbes } from './admission-probe.js';
import type { DeviceConnection } from './connection.js';

/**
 * How long after the question segments wait for its answer before they go up as they are.
 * A platform that knows the question answers in one round trip through the broker; one
 * older than the question never answers, and a run must not wait `timeoutMs` for that.
 */
export const SEGMENT_WAIT_MS = 1_000;

interface Question {
  answer: Promise<ReadonlySet<SegmentEncoding>>;
  askedAt: number;
  /** Settles the question as refused; undefined once it is settled. */
  refused: (() => void) | undefined;
  /** Whether a segment has gone up as it is for want of the answer (said once a question). */
  passed: boolean;
}

export interface PlatformFeaturesContext {
  probes: AdmissionProbes;
  connection: DeviceConnection;
  /** How long the question stays open before the platform is taken to accept nothing more. */
  timeoutMs: number;
  logger: GatewayLogger;
  /** The algorithm to ask with as soon as the connection is ready; undefined: ask only when a segment needs it. */
  askOnConnect: () => string | undefined;
  /** How long after the question segments wait for its answer (default SEGMENT_WAIT_MS). */
  segmentWaitMs?: number;
}

/**
 * What the platform behind the broker accepts beyond the protocol's first form, asked once
 * per connection (an admission probe with `capabilities`) as soon as it is ready when the
 * gateway may compress, and forgotten when the connection drops (the gateway may come back
 * to another platform release). A platform that refuses the question (older than it), or
 * does not answer within `timeoutMs`, is taken to accept nothing more, so that a gateway set
 * to compress still delivers every run to it. Segments wait for the answer at most
 * `segmentWaitMs` after the question went out, so once a connection, and go up as they are
 * while it is open.
 */
export class PlatformFeatures {
  readonly #probes: AdmissionProbes;
  readonly #timeoutMs: number;
  readonly #segmentWaitMs: number;
  readonly #logger: GatewayLogger;
  #question: Question | undefined;

  constructor(context: PlatformFeaturesContext) {
    this.#probes = context.probes;
    this.#timeoutMs = context.timeoutMs;
    this.#segmentWaitMs = context.segmentWaitMs ?? SEGMENT_WAIT_MS;
    this.#logger = context.logger;
    context.connection.on('down', () => (this.#question = undefined));
    context.connection.on('ready', () => {
      const algorithm = context.askOnConnect();
      if (algorithm !== undefined) this.#ask(algorithm);
    });
  }

  /**
   * The segment encodings the platform expands (asked with `algorithm`, a spec the device
   * sends runs to): the answer, or none while it has not come (waiting for it until
   * `segmentWaitMs` after the question); segments cut after the answer use it.
   */
  async segmentEncodings(algorithm: string): Promise<ReadonlySet<SegmentEncoding>> {
    const question = this.#ask(algorithm);
    const leftMs = Math.max(0, question.askedAt + this.#segmentWaitMs - performance.now());
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, leftMs, undefined)));
    try {
      // An answer already in wins the race with a timer of 0: its callbacks run first.
      const answer = await Promise.race([question.answer, waited]);
      if (answer === undefined && !question.passed) {
        question.passed = true;
        this.#logger.info('the platform has not yet said which segment encodings it accepts; segments go up as they are until it does', { askedMsAgo: Math.round(performance.now() - question.askedAt) });
      }
      return answer ?? new Set();
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A refusal of a message the platform could not read. A platform older than the question
   * refuses it so (its schema does not know `capabilities`): that is its answer, "nothing
   * more", without waiting `timeoutMs`. Any other is a message this gateway sent that the
   * platform cannot read (a platform older than the gateway), which hospital IT should see.
   */
  unreadable(refusal: { code: string; message: string }): void {
    if (this.#question?.refused !== undefined && refusal.code === 'INVALID_REQUEST' && refusal.message.includes('capabilities')) {
      this.#logger.warn('the platform refused the question which segment encodings it accepts (it predates compressed segments): segments go up as they are until the gateway reconnects', { refusal: refusal.message });
      this.#question.refused();
      return;
    }
    this.#logger.warn('the platform could not read a message this gateway sent (is the platform older than the gateway?)', { code: refusal.code, refusal: refusal.message });
  }

  /** The connection's one question, asked now unless it is already on its way. Its answer never rejects. */
  #ask(algorithm: string): Question {
    if (this.#question !== undefined) return this.#question;
    let refused: (() => void) | undefined;
    const refusal = new Promise<undefined>((resolve) => (refused = () => resolve(undefined)));
    const question: Question = { answer: this.#answer(algorithm, refusal), askedAt: performance.now(), refused, passed: false };
    question.answer = question.answer.catch((err: unknown) => {
      // Not asked (the publish failed: not connected): ask again next time.
      if (this.#question === question) this.#question = undefined;
      this.#logger.info('could not ask the platform which segment encodings it accepts; segments go up as they are until it answers', errorFields(err));
      return new Set<SegmentEncoding>();
    });
    // Settled either way: a refusal that comes later is no answer to this question.
    void question.answer.then(() => (question.refused = undefined));
    this.#question = question;
    return question;
  }

  async #answer(algorithm: string, refusal: Promise<undefined>): Promise<ReadonlySet<SegmentEncoding>> {
    const asked = this.#probes.capabilities(algorithm, this.#timeoutMs);
    const capabilities = await Promise.race([asked, refusal.then(() => null)]);
    if (capabilities === null) return new Set(); // refused, and said so
    if (capabilities === undefined) {
      this.#logger.warn('the platform did not say which segment encodings it accepts (it predates compressed segments, or did not answer in time): segments go up as they are until the gateway reconnects', { timeoutMs: this.#timeoutMs });
    }
    return new Set(capabilities?.segmentEncodings ?? []);
  }
}
