// The gateway's spans of a run sent while it is acquired, exported to a collector: the
// run's upload and publish spans under its request span, and segment spans under the
// upload, bounded (the first 32 segments, and any of 4 MiB or more).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { parseTraceparent } from '@arteria/protocol';
import { platformGatewayOptions } from './support/dicom-platform.js';
import { until } from './support/cluster.js';
import { OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';

const SECRET = 'trace-segmented-tenant-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));
const ROWS = 64;
const FRAMES = 90;
const FRAME_BYTES = ROWS * ROWS;

describe('tracing a run sent while it is acquired', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-trace-seg-'));
    receiver = await OtlpReceiver.start();
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, workers: 1, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET }, algorithmDirs: [algorithmDir] });
  }, 60_000);
  afterAll(async () => {
    await platform?.close();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('exports its upload and publish spans under the run, and one span per segment for its first 32 segments', async () => {
    const bytes = synthesizeXaRun({ seed: 71, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8, contrast: { startFrame: 40, peakFrame: 60, endFrame: 80 } }).bytes;
    const file = path.join(dir, 'run.dcm');
    await writeFile(file, bytes);
    const gateway = new Gateway({ ...platformGatewayOptions(platform, SECRET, 'cath-lab-1', path.join(dir, 'outbox.db')), deidentification: { enabled: false }, tracing: { otlpEndpoint: receiver.url } }, { env: {} });
    await gateway.start();
    const result = await gateway.sendFollow(file, { framesPerSegment: 2 });
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    await gateway.close(); // flushes the spans
    const traceId = parseTraceparent(result.trace?.traceparent)?.traceId ?? '';
    const spans = await until(() => {
      const of = receiver.spans.filter((s) => s.traceId === traceId && s.service === 'arteria-gateway');
      return Promise.resolve(of.some((s) => s.name === 'arteria.gateway.request') ? of : undefined);
    }, `the gateway's spans of trace ${traceId}`);
    const named = (name: string): ReceivedSpan[] => spans.filter((s) => s.name === name);
    const [request] = named('arteria.gateway.request');
    const [upload, ...moreUploads] = named('arteria.gateway.upload');
    const [publish, ...morePublishes] = named('arteria.gateway.publish');
    expect(moreUploads).toEqual([]);
    expect(morePublishes).toEqual([]);
    expect(upload?.parentSpanId).toBe(request?.spanId);
    expect(publish?.parentSpanId).toBe(request?.spanId);

    // 45 segments of 2 frames: the first 32 have a span each, under the upload; all 45 count in it.
    expect(upload?.attributes).toMatchObject({ 'arteria.request.id': result.requestId, 'arteria.segments': 45, 'arteria.segment.spans': 32, 'arteria.upload.bytes': bytes.length });
    expect(typeof upload?.attributes['arteria.segment.slowest.index']).toBe('number');
    const segments = named('arteria.gateway.segment').sort((a, b) => Number(a.attributes['arteria.segment.index']) - Number(b.attributes['arteria.segment.index']));
    expect(segments.map((s) => s.attributes['arteria.segment.index'])).toEqual([...Array(32).keys()]);
    for (const segment of segments) {
      expect(segment.parentSpanId).toBe(upload?.spanId);
      expect(segment.attributes).toMatchObject({ 'arteria.segment.frames': 2, 'arteria.segment.bytes': 2 * FRAME_BYTES });
      const stored = segment.events.find((e) => e.name === 'stored');
      expect(stored).toBeDefined();
      expect(stored!.timeMs).toBeGreaterThanOrEqual(segment.startMs);
      expect(segment.endMs).toBeGreaterThanOrEqual(stored!.timeMs); // ends when announced, after the store took it
    }
    expect(upload!.startMs).toBeLessThanOrEqual(segments[0]!.startMs);
    expect(publish?.attributes).toMatchObject({ 'arteria.announcements': 45 });
    expect(publish?.events.map((e) => e.name)).toEqual(['run-open acknowledged', 'run-end acknowledged']);
    expect(publish!.endMs).toBeGreaterThanOrEqual(upload!.endMs);
    expect(request!.endMs).toBeGreaterThanOrEqual(publish!.endMs);
  }, 90_000);
});
