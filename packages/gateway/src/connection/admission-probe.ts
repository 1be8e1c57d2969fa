import { randomUUID } from 'node:crypto';
import { ArteriaError, ProbeAnswerV1, encodePayload, isErrorCode, type PlatformCapabilities, type ProbeV1 } from '@arteria/protocol';
import { Questions } from './questions.js';

/**
 * Dry-run admission checks: asks the platform whether it would run a set of algorithms
 * for this device, and which version, without queueing anything. The question goes out
 * on the device's requests topic; the answer comes back among its results.
 */
export class AdmissionProbes {
  readonly #questions: Questions<typeof ProbeAnswerV1>;

  /** `publish`: sends on the device's requests topic. */
  constructor(publish: (payload: Buffer) => Promise<void>) {
    this.#questions = new Questions({ kind: 'probe-answer', schema: ProbeAnswerV1, questionId: (answer) => answer.probeId }, publish);
  }

  /** Takes a message from the results topic if it is a probe answer (true), so the result handler can skip it. */
  take(payload: Buffer): boolean {
    return this.#questions.take(payload);
  }

  /**
   * Asks about `algorithms`; resolves with every spec accepted (spec -> version), or
   * throws the platform's refusal (UNKNOWN_ALGORITHM, ALGORITHM_NOT_ENABLED, ...) for the
   * first refused one, or CONFIG_UNCONFIRMED when no answer comes within `timeoutMs`.
   */
  async check(algorithms: readonly string[], timeoutMs: number): Promise<Map<string, string>> {
    const probe: ProbeV1 = { v: 1, kind: 'probe', id: randomUUID(), algorithms: [...new Set(algorithms)] };
    const answer = await this.#questions.ask(probe.id, encodePayload(probe), timeoutMs);
    if (answer === undefined) throw new ArteriaError('CONFIG_UNCONFIRMED', `the platform did not answer the admission probe within ${timeoutMs} ms`);
    const versions = new Map<string, string>();
    for (const spec of probe.algorithms) {
      const verdict = answer.algorithms.find((a) => a.spec === spec);
      if (verdict?.status === 'accepted' && verdict.version !== undefined) {
        versions.set(spec, verdict.version);
        continue;
      }
      const code = verdict?.error?.code;
      throw new ArteriaError(
        code !== undefined && isErrorCode(code) ? code : 'CONFIG_UNCONFIRMED',
        `the platform would refuse runs sent to ${spec}: ${verdict?.error?.message ?? 'no verdict in the probe answer'}`,
      );
    }
    return versions;
  }

  /**
   * What the platform accepts beyond the protocol's first form (a probe for `algorithm` that
   * asks for its capabilities; the algorithm's own verdict does not matter here). Undefined
   * when no answer came within `timeoutMs`: a platform older than the question refuses the
   * probe as a whole, and its refusal is no probe answer.
   */
  async capabilities(algorithm: string, timeoutMs: number): Promise<PlatformCapabilities | undefined> {
    const probe: ProbeV1 = { v: 1, kind: 'probe', id: randomUUID(), algorithms: [algorithm], capabilities: true };
    const answer = await this.#questions.ask(probe.id, encodePayload(probe), timeoutMs);
    return answer === undefined ? undefined : (answer.capabilities ?? { segmentEncodings: [] });
  }
}
