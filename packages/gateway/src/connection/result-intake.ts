import { PartialResultV1, ResultV1, UNREADABLE_REQUEST_ID, decodePayload, epochNow } from '@arteria/protocol';
import type { DeviceConnection } from './connection.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { Outbox, OutboxResult } from '../outbox/outbox.js';

export interface ResultIntakeContext {
  device: { tenant: string; device: string };
  outbox: Outbox;
  connection: DeviceConnection;
  logger: GatewayLogger;
  /** Answers to the gateway's own questions (grants, probes) that share the results topic: each takes its own. */
  answers: readonly { take(payload: Buffer): boolean }[];
  /** Where partial results and the platform's RUN_NOT_OPEN for segmented runs go. */
  segmented: { partial(partial: PartialResultV1): void; runNotOpen(requestId: string): void };
  /** Abandons of segmented runs waiting for the platform's answer: any result for the run is that answer. */
  abandons: { answered(result: ResultV1): boolean };
  /** Runs the platform refused in segments (NOT_INCREMENTAL, ...): sent whole instead (true: not an answer). */
  wholeFiles: { refusedInSegments(requestId: string, code: string, message: string): boolean };
  /** The platform's refusals of messages it could not read (the placeholder request id): no outbox entry's answer. */
  unreadable(refusal: { code: string; message: string }): void;
}

/**
 * Owns `→ done`: takes the device's results topic and completes the outbox entries a
 * result answers. Runs synchronously before the PUBACK, so an entry is durably done
 * before the platform may forget its result; everything else follows the transition.
 */
export class ResultIntake {
  readonly #ctx: ResultIntakeContext;

  constructor(context: ResultIntakeContext) {
    this.#ctx = context;
    context.connection.handle('results', (payload) => this.#take(payload));
  }

  #take(payload: Buffer): void {
    const { answers, logger, device, outbox } = this.#ctx;
    if (answers.some((a) => a.take(payload))) return;
    let decoded: ResultV1;
    try {
      decoded = decodePayload(ResultV1, payload);
    } catch (err) {
      const partial = this.#partial(payload);
      if (partial !== undefined) return this.#ctx.segmented.partial(partial);
      logger.warn('ignoring a malformed result', errorFields(err));
      return;
    }
    if (decoded.tenant !== device.tenant || decoded.device !== device.device) {
      logger.warn('ignoring a result addressed to another device', { tenant: decoded.tenant, device: decoded.device, requestId: decoded.requestId });
      return;
    }
    if (decoded.status === 'rejected' && decoded.requestId === UNREADABLE_REQUEST_ID) {
      this.#ctx.unreadable({ code: decoded.error?.code ?? 'INVALID_REQUEST', message: decoded.error?.message ?? '' });
      return;
    }
    // A run this gateway gave up: whatever the platform says of it answers the abandon (its entry has ended).
    if (this.#ctx.abandons.answered(decoded)) return;
    if (decoded.status === 'rejected' && decoded.error?.code === 'RATE_LIMITED') {
      // Backpressure, not an answer: the request stays in the outbox and its next resend asks again.
      logger.warn('the platform asked this device to slow down; the request stays in the outbox and is resent', { requestId: decoded.requestId, reason: decoded.error.message });
      return;
    }
    if (decoded.status === 'rejected' && decoded.error?.code === 'RUN_NOT_OPEN') {
      // Not an answer: the platform holds no open run of this id, so the gateway announces the run again.
      this.#ctx.segmented.runNotOpen(decoded.requestId);
      return;
    }
    const refused = decoded.status === 'rejected' ? decoded.error : undefined;
    if (refused !== undefined && this.#ctx.wholeFiles.refusedInSegments(decoded.requestId, refused.code, refused.message)) return;
    const result: OutboxResult = { ...decoded, timings: { ...decoded.timings, received: epochNow() } };
    if (outbox.complete(result, result.timings.received).length > 0) return;
    const known = outbox.findByRequestId(result.requestId);
    logger.info('ignoring a result the outbox is not waiting for', { requestId: result.requestId, entryState: known?.state ?? 'unknown' });
  }

  /** A partial result for this device, or undefined when the payload is not one. */
  #partial(payload: Buffer): PartialResultV1 | undefined {
    const { device } = this.#ctx;
    try {
      const partial = decodePayload(PartialResultV1, payload);
      return partial.tenant === device.tenant && partial.device === device.device ? partial : undefined;
    } catch {
      return undefined; // neither a result nor a partial result: reported as a malformed result
    }
  }
}
