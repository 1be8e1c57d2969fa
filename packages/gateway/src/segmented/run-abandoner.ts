import { encodePayload, epochNow, toArteriaError, type ResultV1, type RunAbandonV1 } from '@arteria/protocol';
import { MAX_ABANDON_PUBLISHES, type AbandonRecord } from '../outbox/abandon-journal.js';
import type { DeviceConnection } from '../connection/connection.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { Outbox } from '../outbox/outbox.js';

export interface RunAbandonerContext {
  device: { tenant: string; device: string };
  outbox: Outbox;
  connection: DeviceConnection;
  logger: GatewayLogger;
  resendIntervalMs: number;
}

/**
 * Abandons on the platform the segmented runs this gateway gave up after their run-open
 * (the outbox notes each in the transaction that ends its entry: abandon-journal.ts).
 * Publishes each RunAbandonV1 once its run's follower has stopped (so no segment of the run
 * follows it), again every resendIntervalMs and at once after a reconnect or a restart,
 * until any result for the run comes back (RUN_ABANDONED; RUN_NOT_OPEN when the platform
 * never opened it; or the run's own result that crossed the abandon), and at most
 * MAX_ABANDON_PUBLISHES times (a platform that predates the message never answers it).
 */
export class RunAbandoner {
  readonly #ctx: RunAbandonerContext;
  readonly #inFlight = new Set<string>();
  readonly #unsubscribe: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(context: RunAbandonerContext) {
    this.#ctx = context;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#unsubscribe.push(this.#ctx.connection.on('ready', () => this.#sendDue(0)));
    this.#timer = setInterval(() => this.#sendDue(this.#ctx.resendIntervalMs), Math.min(this.#ctx.resendIntervalMs, 1000));
    this.#timer.unref();
    this.#sendDue(0);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  /** A run's entry ended and its follower stopped: its abandon, if the outbox noted one, goes now. */
  abandon(entryId: string): void {
    const record = this.#ctx.outbox.abandons.get(entryId);
    if (record !== undefined && record.answeredAt === undefined && this.#timer !== undefined) void this.#send(record);
  }

  /** Whether a result answers an abandon this gateway sent (then it is not the answer to anything else: the run's entry has ended). */
  answered(result: ResultV1): boolean {
    const record = this.#ctx.outbox.abandons.answered(result.requestId, epochNow());
    if (record === undefined) return false;
    this.#ctx.logger.info('the platform answered an abandoned run', { entryId: record.entryId, requestId: record.requestId, status: result.status, code: result.error?.code ?? '', reason: record.reason.code });
    return true;
  }

  /** Publishes every abandon not answered whose last publish is at least `olderThanMs` old. */
  #sendDue(olderThanMs: number): void {
    if (this.#ctx.connection.state !== 'ready') return;
    const now = epochNow();
    for (const record of this.#ctx.outbox.abandons.due()) {
      if (record.lastPublishedAt === undefined || now - record.lastPublishedAt >= olderThanMs) void this.#send(record);
    }
  }

  async #send(record: AbandonRecord): Promise<void> {
    const { connection, outbox, logger, device } = this.#ctx;
    if (connection.state !== 'ready' || this.#inFlight.has(record.entryId)) return;
    this.#inFlight.add(record.entryId);
    try {
      const message: RunAbandonV1 = { v: 1, kind: 'run-abandon', requestId: record.requestId, tenant: device.tenant, device: device.device, reason: record.reason, at: record.at };
      await connection.publishRequest(encodePayload(message));
      outbox.abandons.published(record.entryId, epochNow());
      if (record.publishes === 0) logger.info('abandoned a segmented run on the platform', { entryId: record.entryId, requestId: record.requestId, reason: record.reason.code });
      else if (record.publishes + 1 >= MAX_ABANDON_PUBLISHES) {
        logger.warn('the platform never answered the abandon of a segmented run; no longer sending it (a platform that predates run-abandon keeps the run open)', { entryId: record.entryId, requestId: record.requestId, publishes: record.publishes + 1 });
      }
    } catch (err) {
      logger.warn('could not publish the abandon of a segmented run; it is sent again', { entryId: record.entryId, ...errorFields(toArteriaError(err)) });
    } finally {
      this.#inFlight.delete(record.entryId);
    }
  }
}
