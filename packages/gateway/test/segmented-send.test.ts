import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connect, type MqttClient } from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { deviceTopic, encodePayload, epochNow, type PartialResultV1, type ResultV1, type RunOpenV1, type SegmentV1 } from '@arteria/protocol';
import { TENANT, gatewayOptions, memoryLogger, objectBytes, startServersWithResponder, withGrants, type Responder, type Servers } from './helpers.js';

const ROWS = 32;
const FRAMES = 40;
const FRAME_BYTES = ROWS * ROWS;

let servers: Servers;
let responder: Responder;
/** Plays the platform's results side for what the Responder does not send. */
let platform: MqttClient;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
  platform = connect(servers.mqttUrl, { clientId: `platform-results-${Math.random().toString(16).slice(2)}`, clean: true });
  await new Promise<void>((resolve, reject) => {
    platform.once('connect', () => resolve());
    platform.once('error', reject);
  });
});

afterAll(async () => {
  await platform?.endAsync(true);
  await servers?.close();
});

const run = (seed: number): { header: Uint8Array; pixels: Uint8Array } => {
  const bytes = synthesizeXaRun({ seed, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 }).bytes;
  return { header: bytes.subarray(0, bytes.length - FRAMES * FRAME_BYTES), pixels: bytes.subarray(bytes.length - FRAMES * FRAME_BYTES) };
};

/**
 * A frame source against a scripted platform: the platform's answers that are not the final
 * result (partial results, RUN_NOT_OPEN) and what the gateway does with them.
 */
describe('segmented runs: partial results and RUN_NOT_OPEN', () => {
  it('hands each partial result to the caller once per seq and logs it as a partial result, not a malformed one', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'seg-partials'), { logger });
    await gateway.start();
    try {
      const { header, pixels } = run(21);
      const partials: PartialResultV1[] = [];
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10, onPartial: (p) => partials.push(p) });
      await source.push(pixels.subarray(0, 10 * FRAME_BYTES));
      await responder.until(() => responder.segmented.some((s) => s.device === 'seg-partials' && s.kind === 'segment'));
      const partial: PartialResultV1 = {
        v: 1, kind: 'partial', requestId: source.requestId, tenant: TENANT, device: 'seg-partials', seq: 0, framesSeen: 10,
        event: { key: 'arrival', type: 'contrast-arrival', frame: 7 }, algorithm: { name: 'contrast-injection', version: '1.0.0', digest: `sha256:${'a'.repeat(64)}` }, at: epochNow(),
      };
      // A replaced worker may send the same seq again.
      for (let i = 0; i < 2; i++) await platform.publishAsync(deviceTopic({ tenant: TENANT, device: 'seg-partials' }, 'results'), encodePayload(partial), { qos: 1 });
      await vi.waitFor(() => expect(partials).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await source.push(pixels.subarray(10 * FRAME_BYTES));
      await source.end();
      const result = await source.result;
      expect(result).toMatchObject({ status: 'ok', output: { frames: FRAMES, segments: 4 } });
      expect(partials.map((p) => [p.seq, p.event.type])).toEqual([[0, 'contrast-arrival']]);
      expect(logger.lines.filter((l) => l.message === 'partial result')).toHaveLength(1);
      expect(logger.lines.filter((l) => l.message.includes('malformed'))).toEqual([]);
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('announces the run-open and its segments again when the platform answers RUN_NOT_OPEN, and completes once', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'seg-not-open', { resendIntervalMs: 1_000 }), { logger });
    await gateway.start();
    try {
      const { header, pixels } = run(22);
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      await source.push(pixels.subarray(0, 20 * FRAME_BYTES));
      const steps = (): (RunOpenV1 | SegmentV1)[] => responder.segmented.filter((s): s is RunOpenV1 | SegmentV1 => s.device === 'seg-not-open' && s.kind !== 'run-end');
      await vi.waitFor(() => expect(steps().filter((s) => s.kind === 'segment')).toHaveLength(2), { timeout: 10_000, interval: 20 });
      const notOpen: ResultV1 = {
        v: 1, requestId: source.requestId, tenant: TENANT, device: 'seg-not-open', status: 'rejected',
        error: { code: 'RUN_NOT_OPEN', message: 'no open segmented run' }, timings: { resultPublished: epochNow() },
      };
      await platform.publishAsync(deviceTopic({ tenant: TENANT, device: 'seg-not-open' }, 'results'), encodePayload(notOpen), { qos: 1 });
      await vi.waitFor(() => expect(steps().filter((s) => s.kind === 'run-open')).toHaveLength(2), { timeout: 10_000, interval: 20 });
      await vi.waitFor(() => expect(steps().filter((s) => s.kind === 'segment')).toHaveLength(4), { timeout: 10_000, interval: 20 });
      expect(steps().map((s) => (s.kind === 'segment' ? s.index : 'open'))).toEqual(['open', 0, 1, 'open', 0, 1]);
      await source.push(pixels.subarray(20 * FRAME_BYTES));
      await source.end();
      expect(await source.result).toMatchObject({ status: 'ok', output: { frames: FRAMES, segments: 4 } });
      expect(gateway.stats()).toMatchObject({ done: 1, pending: 0 });
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('a frame source whose gateway closed mid-run (its last write cut short) is joined again on the next start and goes on from the whole frames accepted', async () => {
    const options = gatewayOptions(servers, 'seg-rejoin');
    const { header, pixels } = run(23);
    const first = new Gateway(options, { logger: memoryLogger() });
    await first.start();
    const source = await first.openFrameSource(header, { framesPerSegment: 10 });
    await source.push(pixels.subarray(0, 25 * FRAME_BYTES));
    await vi.waitFor(() => expect(responder.segmented.filter((s) => s.device === 'seg-rejoin' && s.kind === 'segment')).toHaveLength(2), { timeout: 10_000, interval: 20 });
    await first.close();
    await expect(source.result).rejects.toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    // And its last write was cut short halfway through frame 25: the next push goes at the frame boundary.
    await appendFile(path.join(`${options.outboxPath}.spool`, `${source.entryId}-frames`), pixels.subarray(25 * FRAME_BYTES, 25 * FRAME_BYTES + FRAME_BYTES / 2));

    const second = new Gateway(options, { logger: memoryLogger() });
    await second.start();
    try {
      const again = await second.openFrameSource(header, { framesPerSegment: 10 });
      expect(again.requestId).toBe(source.requestId);
      expect(again.framesAccepted).toBe(25);
      await again.push(pixels.subarray(25 * FRAME_BYTES));
      await again.end();
      expect(await again.result).toMatchObject({ status: 'ok', output: { frames: FRAMES } });
      // Nothing announced twice, nothing lost (the five frames left at the close may have gone up as their own segment).
      const steps = responder.segmented.filter((s) => s.device === 'seg-rejoin');
      const segments = steps.filter((s): s is SegmentV1 => s.kind === 'segment');
      expect(steps.map((s) => s.kind)).toEqual(['run-open', ...segments.map(() => 'segment'), 'run-end']);
      expect(segments.map((s) => s.index)).toEqual(segments.map((_, i) => i));
      expect(segments.reduce((n, s) => n + s.frameCount, 0)).toBe(FRAMES);
      const stored = Buffer.concat(await Promise.all(segments.map((s) => objectBytes(servers.s3, s.object.uri))));
      expect(stored.equals(Buffer.from(pixels))).toBe(true);
    } finally {
      await second.close();
    }
  }, 60_000);

  it('re-opens at once when RUN_NOT_OPEN comes during the announce, again after a short backoff when the re-open is refused too, at most once per answer', async () => {
    const device = 'seg-reopen';
    // A resend interval far longer than the test: recovering only at the next resend would time it out.
    const gateway = new Gateway(gatewayOptions(servers, device, { resendIntervalMs: 60_000 }), { logger: memoryLogger() });
    await gateway.start();
    responder.loseRunOpens.set(device, 2); // the run-open and its first re-open are refused
    try {
      const { header, pixels } = run(24);
      const started = epochNow();
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      await source.push(pixels.subarray(0, 20 * FRAME_BYTES));
      await source.push(pixels.subarray(20 * FRAME_BYTES));
      await source.end();
      expect(await source.result).toMatchObject({ status: 'ok', output: { frames: FRAMES, segments: 4 } });
      expect(epochNow() - started).toBeLessThan(10_000);
      const opens = responder.segmented.filter((s) => s.device === device && s.kind === 'run-open').length;
      const answers = responder.notOpenAnswers.get(device) ?? 0;
      expect(opens).toBeGreaterThanOrEqual(3);
      expect(opens - 1).toBeLessThanOrEqual(answers);
    } finally {
      responder.loseRunOpens.delete(device);
      await gateway.close();
    }
  }, 30_000);

  it('asks for no upload grant it does not use: the header and each segment, each once', async () => {
    const device = 'seg-grants';
    const gateway = new Gateway(withGrants(gatewayOptions(servers, device)), { logger: memoryLogger() });
    await gateway.start();
    try {
      const { header, pixels } = run(25);
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      for (let frame = 0; frame < FRAMES; frame += 10) await source.push(pixels.subarray(frame * FRAME_BYTES, (frame + 10) * FRAME_BYTES));
      await source.end();
      expect(await source.result).toMatchObject({ status: 'ok', output: { frames: FRAMES, segments: 4 } });
      const steps = responder.segmented.filter((s) => s.device === device);
      const written = steps.map((s) => (s.kind === 'run-open' ? s.header.uri : s.kind === 'segment' ? s.object.uri : undefined)).filter((u) => u !== undefined);
      const keyOf = (uri: string): string => uri.replace(/^s3:\/\/[^/]+\//, '');
      const granted = responder.grantRequests.filter((g) => g.key.startsWith(`${TENANT}/${device}/`)).map((g) => g.key);
      expect(granted.sort()).toEqual(written.map(keyOf).sort());
    } finally {
      await gateway.close();
    }
  }, 60_000);
});
