import { TraceContext, epochNow, type RequestV1, type ResultV1 } from '@arteria/protocol';
import { ATTR, SpanKind, SpanStatusCode, contextOf, traceContextOf, traceIdOf, within, type Span, type Tracing } from '@arteria/telemetry';
import type { GatewayLogger } from '../log.js';
import type { OutboxEntry } from '../outbox/outbox.js';
import { SegmentSpans } from '../segmented/segment-spans.js';

/**
 * The gateway's spans: one per run (`arteria.gateway.request`, from send() to its result,
 * child of the caller's trace when given) with `arteria.gateway.upload` and
 * `arteria.gateway.publish` beneath it (and, for a run sent while it is acquired,
 * `arteria.gateway.segment` spans under its upload: segment-spans.ts). The run's span context is what its request carries
 * to the platform, so ingest, queue and worker spans hang under it.
 *
 * A run's span lives in memory: after a restart the resumed run's request still carries
 * its trace (kept in the outbox) and the platform's spans still join it, but the run's own
 * span is not exported.
 */
export class RunTraces {
  readonly #tracing: Tracing;
  readonly #logger: GatewayLogger;
  readonly #open = new Map<string, Span>();
  /** The upload, segment and publish spans of runs sent while they are acquired. */
  readonly segments: SegmentSpans;

  constructor(tracing: Tracing, logger: GatewayLogger) {
    this.#tracing = tracing;
    this.#logger = logger;
    this.segments = new SegmentSpans(tracing.tracer, (entry) => {
      if (!this.#tracing.enabled || entry.trace === undefined) return undefined;
      const span = this.#open.get(entry.id);
      return span === undefined ? contextOf(entry.trace) : within(span);
    });
  }

  /**
   * Starts a run's span; returns the trace context its request carries (undefined when
   * tracing is off and the caller gave none).
   */
  begin(entryId: string, caller: unknown, attributes: { tenant: string; device: string; algorithm: string; acquiredAt: number }): TraceContext | undefined {
    let parent: TraceContext | undefined;
    if (caller !== undefined) {
      const parsed = TraceContext.safeParse(caller);
      if (parsed.success) parent = parsed.data;
      else this.#logger.warn('ignoring a malformed trace context given with a run (W3C: a new trace is started)', { entryId, reason: parsed.error.issues[0]?.message ?? 'invalid' });
    }
    const span = this.#tracing.tracer.startSpan(
      'arteria.gateway.request',
      {
        kind: SpanKind.PRODUCER,
        startTime: attributes.acquiredAt,
        attributes: { [ATTR.tenant]: attributes.tenant, [ATTR.device]: attributes.device, [ATTR.algorithm]: attributes.algorithm },
      },
      contextOf(parent),
    );
    if (span.isRecording()) this.#open.set(entryId, span);
    return traceContextOf(span);
  }

  /** The first publish of a run was acknowledged: its upload and publish spans (from the request's timings, as sent). */
  published(entry: OutboxEntry, request: RequestV1, acknowledgedAt: number): void {
    if (!this.#tracing.enabled || entry.trace === undefined) return;
    const span = this.#open.get(entry.id);
    span?.setAttribute(ATTR.requestId, request.id);
    const parent = span === undefined ? contextOf(entry.trace) : within(span);
    const attributes = { [ATTR.requestId]: request.id, [ATTR.tenant]: request.tenant, [ATTR.device]: request.device, [ATTR.algorithm]: request.algorithm };
    const { acquired, uploaded, published: publishedAt } = request.timings;
    if (acquired !== undefined && uploaded !== undefined) {
      this.#tracing.tracer.startSpan('arteria.gateway.upload', { startTime: acquired, attributes }, parent).end(uploaded);
    }
    if (publishedAt !== undefined) {
      this.#tracing.tracer.startSpan('arteria.gateway.publish', { kind: SpanKind.PRODUCER, startTime: publishedAt, attributes }, parent).end(acknowledgedAt);
    }
  }

  /** A run ended: with its result, or with the error that ended it. */
  finished(entryId: string, outcome: { result: ResultV1; receivedAt: number } | { error: { code: string; message: string } }): void {
    this.segments.ended(entryId, 'result' in outcome ? outcome.result.error?.code : outcome.error.code, 'result' in outcome ? outcome.receivedAt : epochNow());
    const span = this.#open.get(entryId);
    if (span === undefined) return;
    this.#open.delete(entryId);
    if ('result' in outcome) {
      const { result } = outcome;
      span.setAttributes({ [ATTR.requestId]: result.requestId, [ATTR.outcome]: result.status, ...(result.algorithm ? { [ATTR.algorithm]: `${result.algorithm.name}@${result.algorithm.version}` } : {}) });
      if (result.error !== undefined) {
        span.setAttribute(ATTR.errorCode, result.error.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.code });
      }
      span.end(outcome.receivedAt);
      return;
    }
    span.setAttributes({ [ATTR.outcome]: 'ended', [ATTR.errorCode]: outcome.error.code });
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.code });
    span.end();
  }

  /** The trace id of a run, for its log lines. */
  static traceId(entry: Pick<OutboxEntry, 'trace'> | undefined): { traceId?: string } {
    const id = traceIdOf(entry?.trace);
    return id === undefined ? {} : { traceId: id };
  }

  /** Forgets a run's span without exporting it (the send joined a run already on its way, whose trace goes on). */
  discard(entryId: string): void {
    this.#open.delete(entryId);
  }

  /**
   * Flushes what ended and stops exporting. Spans of runs still open are not exported:
   * those runs resume after a restart, and a span cut at shutdown would misstate them.
   */
  async close(): Promise<void> {
    this.#open.clear();
    await this.#tracing.close();
  }
}
