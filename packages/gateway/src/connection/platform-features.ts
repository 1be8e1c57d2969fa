import type { SegmentEncoding } from '@arteria/protocol';
import { errorFields, type GatewayLogger } from '../log.js';
import type { AdmissionProbes } from './admission-probe.js';
import type { DeviceConnection } from './connection.js';

/**
 * What the platform behind the broker accepts beyond the protocol's first form, asked once
 * per connection (an admission probe with `capabilities`) when first needed, and forgotten
 * when the connection drops (the gateway may come back to another platform release). A
 * platform that does not answer within `timeoutMs` (older than the question) is taken to
 * accept nothing more, so that a gateway set to compress still delivers every run to it.
 */
export class PlatformFeatures {
  readonly #probes: AdmissionProbes;
  readonly #timeoutMs: number;
  readonly #logger: GatewayLogger;
  #encodings: Promise<ReadonlySet<SegmentEncoding>> | undefined;

  constructor(context: { probes: AdmissionProbes; connection: DeviceConnection; timeoutMs: number; logger: GatewayLogger }) {
    this.#probes = context.probes;
    this.#timeoutMs = context.timeoutMs;
    this.#logger = context.logger;
    context.connection.on('down', () => (this.#encodings = undefined));
  }

  /** The segment encodings the platform expands (asked with `algorithm`, a spec the device sends runs to). */
  async segmentEncodings(algorithm: string): Promise<ReadonlySet<SegmentEncoding>> {
    const asked = (this.#encodings ??= this.#ask(algorithm));
    try {
      return await asked;
    } catch (err) {
      // Not asked (the publish failed: not connected): ask again next time.
      if (this.#encodings === asked) this.#encodings = undefined;
      this.#logger.info('could not ask the platform which segment encodings it accepts; this segment goes up as it is', errorFields(err));
      return new Set();
    }
  }

  async #ask(algorithm: string): Promise<ReadonlySet<SegmentEncoding>> {
    const capabilities = await this.#probes.capabilities(algorithm, this.#timeoutMs);
    if (capabilities === undefined) {
      this.#logger.warn('the platform did not say which segment encodings it accepts (it predates compressed segments, or did not answer in time): segments go up as they are until the gateway reconnects', { timeoutMs: this.#timeoutMs });
    }
    return new Set(capabilities?.segmentEncodings ?? []);
  }
}
