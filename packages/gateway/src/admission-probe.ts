import { randomUUID } from 'node:crypto';
import { ArteriaError, ProbeAnswerV1, decodePayload, encodePayload, isErrorCode, type ProbeV1 } from '@arteria/protocol';

/** A probe answer is told apart from a result by this marker before it is parsed (results stay on their fast path). */
const ANSWER_MARKER = Buffer.from('"kind":"probe-answer"');

/**
 * Dry-run admission checks: asks the platform whether it would run a set of algorithms
 * for this device, and which version, without queueing anything. The question goes out
 * on the device's requests topic; the answer comes back among its results.
 */
export class AdmissionProbes {
  readonly #waiting = new Map<string, (answer: ProbeAnswerV1) => void>();

  /**
   * Takes a message from the results topic if it is a probe answer (true), so the result
   * handler can skip it. A malformed answer is still consumed: it is no result either.
   */
  take(payload: Buffer): boolean {
    if (!payload.includes(ANSWER_MARKER)) return false;
    let answer: ProbeAnswerV1;
    try {
      answer = decodePayload(ProbeAnswerV1, payload);
    } catch {
      return true; // nobody can be waiting for an answer that does not parse; its probe times out
    }
    this.#waiting.get(answer.probeId)?.(answer);
    return true;
  }

  /**
   * Asks about `algorithms`; resolves with every spec accepted (spec -> version), or
   * throws the platform's refusal (UNKNOWN_ALGORITHM, ALGORITHM_NOT_ENABLED, ...) for the
   * first refused one, or CONFIG_UNCONFIRMED when no answer comes within `timeoutMs`.
   */
  async check(algorithms: readonly string[], publish: (payload: Buffer) => Promise<void>, timeoutMs: number): Promise<Map<string, string>> {
    const probe: ProbeV1 = { v: 1, kind: 'probe', id: randomUUID(), algorithms: [...new Set(algorithms)] };
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<ProbeAnswerV1 | undefined>((resolve) => {
      this.#waiting.set(probe.id, resolve);
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      await publish(encodePayload(probe));
      const answer = await answered;
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
    } finally {
      clearTimeout(timer);
      this.#waiting.delete(probe.id);
    }
  }
}
