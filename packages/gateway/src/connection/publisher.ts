import { RequestV1, RunEndV1, encodePayload, epochNow, toArteriaError } from '@arteria/protocol';
import type { DeviceConnection } from './connection.js';
import type { TypedEmitter } from '../events.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { Outbox, OutboxEntry } from '../outbox/outbox.js';
import { RunTraces } from '../runs/run-traces.js';
import type { GatewayEvents } from '../types.js';

export interface PublisherContext {
  outbox: Outbox;
  connection: DeviceConnection;
  logger: GatewayLogger;
  resendIntervalMs: number;
  lifetime: AbortSignal;
  /** Where failed publishes are announced (they are retried). */
  events: TypedEmitter<GatewayEvents>;
  /** Records each run's upload and publish spans at its first acknowledged publish. */
  traces: RunTraces;
}

/**
 * Owns `uploaded → published`: publishes the request of every entry the outbox reports
 * uploaded (QoS 1), publishes it again every resendIntervalMs until its result arrives,
 * and at once after every reconnect. The platform deduplicates by request id, so a lost
 * message or a platform restart only delays a run. A segmented run's "request" at this
 * stage is its run-end (its run-open and segments were announced as it streamed): the end
 * is what is resent until the result comes.
 */
export class Publisher {
  readonly #ctx: PublisherContext;
  readonly #inFlight = new Set<string>();
  readonly #unsubscribe: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #published = 0;

  constructor(context: PublisherContext) {
    this.#ctx = context;
  }

  /** Requests published (acknowledged by the broker) since start, resends included. */
  get published(): number {
    return this.#published;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    const { outbox, connection } = this.#ctx;
    this.#unsubscribe.push(
      outbox.subscribe((t) => {
        if (t.to === 'uploaded') void this.publish(t.entry);
      }),
      connection.on('ready', () => this.publishAll()), // after a reconnect, at once rather than at the next tick
    );
    // Ticks finer than the interval so a resend is at most a second late.
    this.#timer = setInterval(() => this.#resendDue(), Math.min(this.#ctx.resendIntervalMs, 1000));
  }

  stop(): void {
    clearInterval(this.#timer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  /** Publishes every unanswered request now. */
  publishAll(): void {
    for (const entry of this.#ctx.outbox.awaitingResult()) void this.publish(entry);
  }

  /** Publishes an entry's request if connected; never throws (the next tick retries). */
  async publish(entry: OutboxEntry): Promise<void> {
    const { outbox, connection } = this.#ctx;
    if (connection.state !== 'ready' || entry.requestJson === undefined || this.#inFlight.has(entry.id)) return;
    this.#inFlight.add(entry.id);
    try {
      if (entry.kind === 'segmented') {
        const publishedAt = epochNow();
        await connection.publishRequest(encodePayload(RunEndV1.parse(JSON.parse(entry.requestJson))));
        const acknowledgedAt = epochNow();
        this.#published += 1;
        if (entry.state === 'uploaded') this.#ctx.traces.segments.endPublished(entry, publishedAt, acknowledgedAt);
        outbox.markPublished(entry.id, acknowledgedAt);
        return;
      }
      // Every copy carries the first publish time: the platform keeps whichever copy it sees first.
      const published = outbox.stampFirstPublish(entry.id, epochNow());
      const stored = RequestV1.parse(JSON.parse(entry.requestJson));
      const request = { ...stored, timings: { ...stored.timings, published } };
      await connection.publishRunRequest(request);
      const acknowledgedAt = epochNow();
      this.#published += 1;
      // The first acknowledged publish, whether or not its result came first (then nothing is recorded).
      if (entry.state === 'uploaded') this.#ctx.traces.published(entry, request, acknowledgedAt);
      outbox.markPublished(entry.id, acknowledgedAt);
    } catch (err) {
      if (this.#ctx.lifetime.aborted) return;
      const error = toArteriaError(err, 'INTERNAL');
      this.#ctx.logger.warn('publishing a request failed; it is resent', { entryId: entry.id, ...RunTraces.traceId(entry), ...errorFields(error) });
      this.#ctx.events.emit('error', { entryId: entry.id, error });
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
