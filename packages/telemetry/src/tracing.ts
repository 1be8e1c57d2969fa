import { ProxyTracerProvider, type Tracer } from '@opentelemetry/api';
import { ArteriaError } from '@arteria/protocol';

/** Span attribute names (no PHI: identifiers, versions and outcomes only). */
export const ATTR = {
  requestId: 'arteria.request.id',
  tenant: 'arteria.tenant',
  device: 'arteria.device',
  /** `name@version` once resolved, else the spec the device asked for. */
  algorithm: 'arteria.algorithm',
  outcome: 'arteria.outcome',
  errorCode: 'arteria.error.code',
  deliveries: 'arteria.task.deliveries',
} as const;

export interface TracingOptions {
  /**
   * OTLP/HTTP endpoint of a collector, as `OTEL_EXPORTER_OTLP_ENDPOINT` (`http://host:4318`):
   * spans are posted to `<endpoint>/v1/traces`. Unset: tracing is off.
   */
  otlpEndpoint?: string | undefined;
  /** `service.name` of the exported spans (`arteria-gateway`, `arteria-ingest`...). */
  serviceName: string;
  /** `service.instance.id`, when the process has one (a pod name, an instance id). */
  serviceInstanceId?: string | undefined;
  /**
   * Told when spans could not be sent at flush or close (collector unreachable): tracing
   * never fails a request or a shutdown, but the process says what was lost.
   */
  onError: (error: Error) => void;
}

/** The process's tracer and what ends it. */
export interface Tracing {
  readonly tracer: Tracer;
  /** True when spans are exported. */
  readonly enabled: boolean;
  /** Sends the spans ended so far (tests, shutdown). */
  flush(): Promise<void>;
  /** Flushes and stops exporting. Idempotent. */
  close(): Promise<void>;
}

/**
 * Tracing off: the OpenTelemetry API's no-op tracer. Its spans record nothing and keep the
 * parent's context, so a trace context a device sent still travels on unchanged, and none
 * is invented when it sent none.
 */
export function noTracing(): Tracing {
  // A provider of our own (without a delegate: no-op), not the API's global one.
  const tracer = new ProxyTracerProvider().getTracer('arteria');
  return { tracer, enabled: false, flush: () => Promise.resolve(), close: () => Promise.resolve() };
}

/**
 * The process's tracing: off (no SDK loaded) without an endpoint; else an OpenTelemetry SDK
 * tracer provider of its own (not registered globally) that batches spans to the collector
 * over OTLP/HTTP (JSON). The SDK is imported only here, so a process without an endpoint
 * never loads it.
 */
export async function openTracing(options: TracingOptions): Promise<Tracing> {
  const endpoint = options.otlpEndpoint?.trim();
  if (endpoint === undefined || endpoint === '') return noTracing();
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      ...(options.serviceInstanceId === undefined ? {} : { 'service.instance.id': options.serviceInstanceId }),
    }),
    // Batched: a span costs the request path a push to a buffer, never a network round trip.
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1_000 })],
  });
  const report =
    (what: string) =>
    (err: unknown): void => {
    options.onError(new ArteriaError('TRACING_UNAVAILABLE', `could not ${what} spans to the OpenTelemetry collector at ${endpoint}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
  };
  let closing: Promise<void> | undefined;
  return {
    tracer: provider.getTracer('arteria'),
    enabled: true,
    flush: () => provider.forceFlush().catch(report('send')),
    close: () => (closing ??= provider.shutdown().catch(report('send the last'))),
  };
}
