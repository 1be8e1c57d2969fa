import { RequestV1, encodePayload, epochNow, toArteriaError, type ArteriaError } from '@arteria/protocol';
import type { DeviceConnection } from './connection.js';
import { errorFields, type GatewayLogger } from './log.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import { RunTraces } from './run-traces.js';

export interface PublisherContext {
  outbox: Outbox;
  connection: DeviceConnection;
  logger: GatewayLogger;
  resendIntervalMs: number;
  lifetime: AbortSignal;
  /** The broker acknowledged the entry's first publish (and no result has come yet). */
  onFirstPublished(entry: OutboxEntry, requestId: string): void;
  /** The broker acknowledged the entry's first publish, whether or not its result came first; `request` as sent. */
  onFirstAcknowledged?(entry: OutboxEntry, request: RequestV1, acknowledgedAt: number): void;
  onPublished(): void;
  onError(entry: OutboxEntry, error: ArteriaError): void;
}

/**
 * Publishes the requests of uploaded entries (QoS 1) and publishes them again every
 * resendIntervalMs until their result arrives, and at once after every reconnect. The
 * platform deduplicates by request id, so a lost message or a platform restart only
 * delays a run.
 */
export class Publisher {
  readonly #ctx: PublisherContext;
  readonly #inFlight = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(context: PublisherContext) {
    this.#ctx = context;
  }

  start(): void {
    // Ticks finer than the interval so a resend is at most a second late.
    this.#timer ??= setInterval(() => this.#resendDue(), Math.min(this.#ctx.resendIntervalMs, 1000));
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Publishes every unanswered request now (after a reconnect). */
  publishAll(): void {
    for (const entry of this.#ctx.outbox.awaitingResult()) void this.publish(entry);
  }

  /** Publishes an entry's request if connected; never throws (the next tick retries). */
  async publish(entry: OutboxEntry): Promise<void> {
    const { outbox, connection } = this.#ctx;
    if (connection.state !== 'ready' || entry.requestJson === undefined || this.#inFlight.has(entry.id)) return;
    this.#inFlight.add(entry.id);
    try {
      // Every copy carries the first publish time: the platform keeps whichever copy it sees first.
      const published = outbox.stampFirstPublish(entry.id, epochNow());
      const stored = RequestV1.parse(JSON.parse(entry.requestJson));
      const request = { ...stored, timings: { ...stored.timings, published } };
      await connection.publishRequest(encodePayload(request));
      const acknowledgedAt = epochNow();
      outbox.markPublished(entry.id, acknowledgedAt);
      this.#ctx.onPublished();
      if (entry.state === 'uploaded') this.#ctx.onFirstAcknowledged?.(entry, request, acknowledgedAt);
      // The result may already have come (and the entry be done) before the PUBACK.
      if (entry.state === 'uploaded' && outbox.get(entry.id)?.state === 'published') this.#ctx.onFirstPublished(entry, request.id);
    } catch (err) {
      if (this.#ctx.lifetime.aborted) return;
      const error = toArteriaError(err, 'INTERNAL');
      this.#ctx.logger.warn('publishing a request failed; it is resent', { entryId: entry.id, ...RunTraces.traceId(entry), ...errorFields(error) });
      this.#ctx.onError(entry, error);
    } finally {
      this.#inFlight.delete(entry.id);
    }
  }

  #resendDue(): void {
    if (this.#ctx.connection.state !== 'ready' || this.#ctx.lifetime.aborted) return;
    const dueBefore = epochNow() - this.#ctx.resendIntervalMs;
    for (const entry of this.#ctx.outbox.awaitingResult()) {
      if (entry.lastPublishedAt === undefined || entry.lastPublishedAt <= dueBefore) void this.publish(entry);
    }
  }
}
