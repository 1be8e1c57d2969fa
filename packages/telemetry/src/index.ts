export { ATTR, noTracing, openTracing, type Tracing, type TracingOptions } from './tracing.js';
export { contextOf, traceContextOf, traceIdOf, within } from './trace-context.js';
export { SpanKind, SpanStatusCode, type Span, type Tracer, type Context } from '@opentelemetry/api';
