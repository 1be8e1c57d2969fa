import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { createLogger } from '@arteria/telemetry';
import { parseTraceparent } from '@arteria/protocol';
import { platformGatewayOptions } from './support/dicom-platform.js';
import { until } from './support/cluster.js';
import { OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';

const SECRET = 'trace-tenant-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));
const run = (seed: number): { bytes: Uint8Array; name: string } => ({
  bytes: synthesizeXaRun({ seed, rows: 64, columns: 64, frames: 12, frameRateHz: 15, bitsStored: 12, contrast: { startFrame: 3, peakFrame: 6, endFrame: 10 } }).bytes,
  name: 'run.dcm',
});
/** A caller's trace context (an upstream system that already traces the procedure). */
const CALLER = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=abc' };
const EXPECTED = [
  'arteria.gateway.request',
  'arteria.gateway.upload',
  'arteria.gateway.publish',
  'arteria.ingest.admit',
  'arteria.queue.wait',
  'arteria.worker.task',
  'arteria.worker.fetch',
  'arteria.worker.compute',
  'arteria.worker.publish',
];

interface Setup {
  dir: string;
  platform: EmbeddedPlatform;
  receiver: OtlpReceiver;
  logLines: Record<string, unknown>[];
  gateway(device: string, tracing: boolean): Gateway;
  close(): Promise<void>;
}

async function setup(tracing: boolean): Promise<Setup> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-trace-'));
  const receiver = await OtlpReceiver.start();
  const logLines: Record<string, unknown>[] = [];
  const logger = createLogger({ role: 'platform', level: 'info', destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) } });
  const platform = await EmbeddedPlatform.start(
    {
      mqttPort: 0,
      s3Port: 0,
      httpPort: 0,
      workers: 1,
      dataDir: path.join(dir, 'platform'),
      tenants: { acme: SECRET },
      algorithmDirs: [algorithmDir],
      ...(tracing ? { tracing: { otlpEndpoint: receiver.url } } : {}),
    },
    undefined,
    undefined,
    logger,
  );
  return {
    dir,
    platform,
    receiver,
    logLines,
    gateway: (device, withTracing) =>
      new Gateway(
        {
          ...platformGatewayOptions(platform, SECRET, device, path.join(dir, `${device}.db`)),
          ...(withTracing ? { tracing: { otlpEndpoint: receiver.url } } : {}),
        },
        // No OTEL_EXPORTER_OTLP_ENDPOINT from the test's own environment.
        { env: {} },
      ),
    async close() {
      await platform.close();
      await receiver.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until the receiver holds every expected span of a trace. */
const spansOf = (receiver: OtlpReceiver, traceId: string): Promise<Map<string, ReceivedSpan>> =>
  until(() => {
    const spans = receiver.trace(traceId);
    return Promise.resolve(EXPECTED.every((name) => spans.has(name)) ? spans : undefined);
  }, `every span of trace ${traceId}`);

describe('tracing on: one trace from the gateway through ingest, queue and worker to the result', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup(true);
  }, 60_000);
  afterAll(() => s?.close());

  it('starts a trace per run and exports the spans with their parent/child links', async () => {
    await using gateway = s.gateway('cath-lab-1', true);
    await gateway.start();
    const result = await gateway.send(run(1));
    expect(result.status).toBe('ok');
    const sent = parseTraceparent(result.trace?.traceparent);
    expect(sent).toBeDefined();
    const traceId = sent?.traceId ?? '';
    // The gateway's spans end with the result; they go out when the gateway flushes (close).
    await gateway.close();
    const spans = await spansOf(s.receiver, traceId);
    const span = (name: string): ReceivedSpan => {
      const found = spans.get(name);
      if (found === undefined) throw new Error(`no span ${name}`);
      return found;
    };
    const request = span('arteria.gateway.request');
    expect(request.parentSpanId).toBeUndefined();
    expect(request.service).toBe('arteria-gateway');
    expect(span('arteria.gateway.upload').parentSpanId).toBe(request.spanId);
    expect(span('arteria.gateway.publish').parentSpanId).toBe(request.spanId);
    const admit = span('arteria.ingest.admit');
    expect(admit.service).toBe('arteria-platform');
    expect(admit.parentSpanId).toBe(request.spanId);
    expect(span('arteria.queue.wait').parentSpanId).toBe(admit.spanId);
    const task = span('arteria.worker.task');
    expect(task.parentSpanId).toBe(admit.spanId);
    for (const name of ['arteria.worker.fetch', 'arteria.worker.compute', 'arteria.worker.publish']) expect(span(name).parentSpanId).toBe(task.spanId);
    // The result names the span that published it: the device can find its place in the trace.
    expect(sent?.spanId).toBe(span('arteria.worker.publish').spanId);
    // Identifiers and versions only (no PHI): every attribute is one of Arteria's.
    const version = `${result.algorithm?.name}@${result.algorithm?.version}`;
    expect(task.attributes).toMatchObject({ 'arteria.request.id': result.requestId, 'arteria.tenant': 'acme', 'arteria.device': 'cath-lab-1', 'arteria.algorithm': version });
    expect(admit.attributes).toMatchObject({ 'arteria.request.id': result.requestId, 'arteria.algorithm': version, 'arteria.outcome': 'accepted' });
    expect(request.attributes).toMatchObject({ 'arteria.request.id': result.requestId, 'arteria.outcome': 'ok', 'arteria.algorithm': version });
    const keys = new Set([...spans.values()].flatMap((sp) => Object.keys(sp.attributes)));
    expect([...keys].filter((k) => !k.startsWith('arteria.'))).toEqual([]);
    // Every stage starts after the run was taken (ends may follow the result: acknowledgements cross it).
    for (const sp of spans.values()) expect(sp.startMs).toBeGreaterThanOrEqual(request.startMs - 1);
    expect(span('arteria.queue.wait').endMs).toBeLessThanOrEqual(task.startMs + 1);
    // The platform's log lines for the request carry its trace id.
    const lines = s.logLines.filter((l) => l.requestId === result.requestId);
    expect(lines.map((l) => l.event)).toEqual(expect.arrayContaining(['admitted', 'leased', 'computed', 'delivered']));
    expect(lines.filter((l) => typeof l.event === 'string').every((l) => l.traceId === traceId)).toBe(true);
  });

  it("continues the caller's trace: the run's span is a child of the given one", async () => {
    await using gateway = s.gateway('cath-lab-2', true);
    await gateway.start();
    const result = await gateway.send(run(2), { trace: CALLER });
    expect(result.status).toBe('ok');
    const caller = parseTraceparent(CALLER.traceparent);
    expect(parseTraceparent(result.trace?.traceparent)?.traceId).toBe(caller?.traceId);
    expect(result.trace?.tracestate).toBe('vendor=abc');
    await gateway.close();
    const spans = await spansOf(s.receiver, caller?.traceId ?? '');
    expect(spans.get('arteria.gateway.request')?.parentSpanId).toBe(caller?.spanId);
  });
});

describe('tracing off', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup(false);
  }, 60_000);
  afterAll(() => s?.close());

  it('exports nothing; the request and result carry a trace context only when the caller gave one, unchanged', async () => {
    await using gateway = s.gateway('cath-lab-3', false);
    await gateway.start();
    const plain = await gateway.send(run(3));
    expect(plain.status).toBe('ok');
    expect(plain.trace).toBeUndefined();
    const plainEntry = await s.platform.ledger.get(plain.requestId);
    expect(plainEntry?.request?.trace).toBeUndefined();

    const given = await gateway.send(run(4), { trace: CALLER });
    expect(given.status).toBe('ok');
    expect(given.trace).toEqual(CALLER);
    expect((await s.platform.ledger.get(given.requestId))?.request?.trace).toEqual(CALLER);
    // The platform's log lines still name the caller's trace.
    const caller = parseTraceparent(CALLER.traceparent)?.traceId;
    expect(s.logLines.filter((l) => l.requestId === given.requestId && l.event === 'admitted').map((l) => l.traceId)).toEqual([caller]);
    await gateway.close();
    expect(s.receiver.requests).toBe(0);
  });
});
