import { ROOT_CONTEXT, TraceFlags, createTraceState, isSpanContextValid, trace, type Context, type Span } from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent, type TraceContext } from '@arteria/protocol';

/**
 * A context whose parent is the remote span a trace context names, or the root context
 * (a new trace) when there is none. Contexts are passed explicitly: Arteria registers no
 * global context manager.
 */
export function contextOf(traceContext: TraceContext | undefined): Context {
  const parsed = parseTraceparent(traceContext?.traceparent);
  if (parsed === undefined) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parsed.traceId,
    spanId: parsed.spanId,
    traceFlags: parsed.flags & TraceFlags.SAMPLED,
    isRemote: true,
    ...(traceContext?.tracestate === undefined ? {} : { traceState: createTraceState(traceContext.tracestate) }),
  });
}

/** The context in which `span` is the parent of what starts next. */
export const within = (span: Span): Context => trace.setSpan(ROOT_CONTEXT, span);

/**
 * The trace context naming `span` as the parent, for the next hop; undefined when the span
 * has no valid context (tracing off and no trace given: nothing is invented).
 */
export function traceContextOf(span: Span): TraceContext | undefined {
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return undefined;
  const traceparent = formatTraceparent({ traceId: context.traceId, spanId: context.spanId, flags: context.traceFlags });
  const tracestate = context.traceState?.serialize();
  return { traceparent, ...(tracestate === undefined || tracestate === '' ? {} : { tracestate }) };
}

/** The trace id of a trace context, for log lines. */
export const traceIdOf = (traceContext: TraceContext | undefined): string | undefined => parseTraceparent(traceContext?.traceparent)?.traceId;
