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
 * to another platform release). A platform that does not answer within `timeoutMs` (older
 * than the question) is taken to accept nothing more, so that a gateway set to compress
 * still delivers every run to it. Segments wait for the answer at most `segmentWaitMs` after
 * the question went out, so once a connection, and go up as they are while it is open.
 */
export class PlatformFeatures {
  readonly #probes: AdmissionProbes;
  readonly #timeoutMs: number;
  readonly #segmentWaitMs: number;
  readonly #logger: GatewayLogger;
  #question: { answer: Promise<ReadonlySet<SegmentEncoding>>; askedAt: number } | undefined;

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
      if (answer === undefined) this.#logger.info('the platform has not yet said which segment encodings it accepts; this segment goes up as it is', { askedMsAgo: Math.round(performance.now() - question.askedAt) });
      return answer ?? new Set();
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connection's one question, asked now unless it is already on its way. Its answer never rejects. */
  #ask(algorithm: string): { answer: Promise<ReadonlySet<SegmentEncoding>>; askedAt: number } {
    if (this.#question !== undefined) return this.#question;
    const question = { answer: this.#answer(algorithm), askedAt: performance.now() };
    question.answer = question.answer.catch((err: unknown) => {
      // Not asked (the publish failed: not connected): ask again next time.
      if (this.#question === question) this.#question = undefined;
      this.#logger.info('could not ask the platform which segment encodings it accepts; segments go up as they are until it answers', errorFields(err));
      return new Set<SegmentEncoding>();
    });
    this.#question = question;
    return question;
  }

  async #answer(algorithm: string): Promise<ReadonlySet<SegmentEncoding>> {
    const capabilities = await this.#probes.capabilities(algorithm, this.#timeoutMs);
    if (capabilities === undefined) {
      this.#logger.warn('the platform did not say which segment encodings it accepts (it predates compressed segments, or did not answer in time): segments go up as they are until the gateway reconnects', { timeoutMs: this.#timeoutMs });
    }
    return new Set(capabilities?.segmentEncodings ?? []);
  }
}
