// What a gateway with segmentEncoding br puts in a segment object: compressed frames when
// that shrinks them within what the platform expands (MAX_SEGMENT_EXPANSION), else the
// frames as they are; with auto, compressed once the uplink is measured slow.
import { randomBytes } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { MAX_SEGMENT_EXPANSION, type SegmentV1 } from '@arteria/protocol';
import { encodeSegment } from '../src/segmented/segment-encoding.js';
import { TENANT, gatewayOptions, memoryLogger, serversForFile, type Responder } from './helpers.js';
import { startStoreProxy } from './store-proxy.js';

const FRAME = 64 * 64;

describe('segment encoding at the gateway', () => {
  it('compresses X-ray frames, losslessly and to the same bytes every time', async () => {
    const run = synthesizeXaRun({ seed: 5, rows: 64, columns: 64, frames: 10, bitsStored: 8 }).bytes;
    const frames = Buffer.from(run.subarray(run.length - 10 * FRAME));
    const once = await encodeSegment(frames, 'br');
    expect(once.encoding).toBe('br');
    expect(once.bytes.length).toBeLessThan(frames.length);
    expect(brotliDecompressSync(once.bytes).equals(frames)).toBe(true);
    expect((await encodeSegment(frames, 'br')).bytes.equals(once.bytes)).toBe(true);
  });

  it('sends as they are frames that do not shrink, and frames that shrink more than the platform expands', async () => {
    const noise = randomBytes(10 * FRAME);
    expect(await encodeSegment(noise, 'br')).toEqual({ bytes: noise, encoding: undefined });
    const blank = Buffer.alloc(10 * FRAME);
    expect(await encodeSegment(blank, 'br')).toEqual({ bytes: blank, encoding: undefined });
    expect(MAX_SEGMENT_EXPANSION).toBeGreaterThan(2); // X-ray frames (1.2-2x) are never sent raw for it
    expect(await encodeSegment(blank, 'none')).toEqual({ bytes: blank, encoding: undefined });
  });
});

/** Sends a synthetic run as it is acquired and returns its segments' encodings in index order, once it is answered `ok`. */
async function segmentEncodingsOf(gateway: Gateway, responder: Responder, run: { seed: number; rows: number; frames: number; framesPerSegment: number }): Promise<SegmentV1['object']['encoding'][]> {
  const { seed, rows, frames, framesPerSegment } = run;
  const bytes = synthesizeXaRun({ seed, rows, columns: rows, frames, bitsStored: 8 }).bytes;
  const header = bytes.subarray(0, bytes.length - frames * rows * rows);
  const source = await gateway.openFrameSource(header, { framesPerSegment });
  for (let f = 0; f < frames; f += framesPerSegment) await source.push(bytes.subarray(header.length + f * rows * rows, header.length + (f + framesPerSegment) * rows * rows));
  await source.end();
  const result = await source.result;
  expect(result.status).toBe('ok');
  const segments = responder.segmented.filter((s): s is SegmentV1 => s.kind === 'segment' && s.requestId === result.requestId);
  return segments.sort((a, b) => a.index - b.index).map((s) => s.object.encoding);
}

describe('segmentEncoding auto over a slow uplink', () => {
  const files = serversForFile();

  it('sends the first segments as they are, and compresses the rest once the link is measured under the threshold', async () => {
    // 6 MB/s to the store (about 50 Mb/s); 160 frames of 256 x 256 in 10 segments of 1 MiB.
    const { servers, responder } = files;
    const proxy = await startStoreProxy(Number(new URL(servers.s3Endpoint).port), 6e6);
    const base = gatewayOptions(servers, 'auto-encoding');
    const gateway = new Gateway({ ...base, s3: { ...base.s3, endpoint: proxy.endpoint }, segmentEncoding: 'auto' }, { logger: memoryLogger() });
    await gateway.start();
    try {
      const encodings = await segmentEncodingsOf(gateway, responder, { seed: 8, rows: 256, frames: 160, framesPerSegment: 16 });
      expect(encodings).toHaveLength(10);
      expect(encodings[0]).toBeUndefined(); // nothing measured yet
      expect(encodings.at(-1)).toBe('br');
      // Once compressed, it stays so: the link is no faster for carrying fewer bytes.
      const first = encodings.indexOf('br');
      expect(encodings.slice(first).every((e) => e === 'br')).toBe(true);
    } finally {
      await gateway.close();
      await proxy.close();
    }
  }, 60_000);
});

// A platform older than compressed segments refuses them, and the run with them: the gateway
// compresses only with an encoding the platform says it expands, asked once per connection.
describe('segment encoding and what the platform accepts', () => {
  const files = serversForFile();

  async function encodingsOfOneRun(name: string, options: { configConfirmTimeoutMs?: number } = {}, logger = memoryLogger()): Promise<{ encodings: (string | undefined)[]; asked: number }> {
    const { servers, responder } = files;
    const gateway = new Gateway({ ...gatewayOptions(servers, name), segmentEncoding: 'br', ...options }, { logger });
    const before = responder.probes.length;
    await gateway.start();
    try {
      const encodings = await segmentEncodingsOf(gateway, responder, { seed: 9, rows: 64, frames: 30, framesPerSegment: 10 });
      return { encodings, asked: responder.probes.slice(before).filter((p) => p.capabilities === true).length };
    } finally {
      await gateway.close();
    }
  }

  it('compresses when the platform lists the encoding, and asks once for the whole run', async () => {
    const { encodings, asked } = await encodingsOfOneRun('features-br');
    expect(encodings).toEqual(['br', 'br', 'br']);
    expect(asked).toBe(1);
  });

  it('sends segments as they are to a platform that lists no encoding', async () => {
    files.responder.segmentEncodings = [];
    try {
      const { encodings, asked } = await encodingsOfOneRun('features-none');
      expect(encodings).toEqual([undefined, undefined, undefined]);
      expect(asked).toBe(1);
    } finally {
      files.responder.segmentEncodings = ['br'];
    }
  });

  it('sends segments as they are to a platform older than the question, which refuses it, and the run is answered', async () => {
    files.responder.predatesCapabilities = true;
    const logger = memoryLogger();
    try {
      // Open for a minute: the refusal, not the timeout, settles it.
      const { encodings, asked } = await encodingsOfOneRun('features-old', { configConfirmTimeoutMs: 60_000 }, logger);
      expect(encodings).toEqual([undefined, undefined, undefined]);
      expect(asked).toBe(1);
      const warnings = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
      expect(warnings.filter((m) => m.startsWith('the platform refused the question which segment encodings it accepts'))).toHaveLength(1);
      expect(warnings.some((m) => m.startsWith('the platform did not say') || m.startsWith('the platform could not read'))).toBe(false);
    } finally {
      files.responder.predatesCapabilities = false;
    }
  });

  it('does not hold a run while a platform that does not answer leaves the question open: its segments go as they are, and the run is answered', async () => {
    files.responder.silentProbes = true;
    const logger = memoryLogger();
    try {
      // Open for a minute: a run that waited for it would outlast this test.
      const { encodings, asked } = await encodingsOfOneRun('features-silent', { configConfirmTimeoutMs: 60_000 }, logger);
      expect(encodings).toEqual([undefined, undefined, undefined]);
      expect(asked).toBe(1);
      expect(logger.lines.some((l) => l.message.startsWith('the platform did not say'))).toBe(false);
      expect(logger.lines.filter((l) => l.message.startsWith('the platform has not yet said'))).toHaveLength(1);
    } finally {
      files.responder.silentProbes = false;
    }
  });

  it("warns of a platform's refusal of a message it could not read, and takes it for no run's answer", async () => {
    const { servers, responder } = files;
    const logger = memoryLogger();
    const gateway = new Gateway({ ...gatewayOptions(servers, 'features-unreadable'), segmentEncoding: 'none' }, { logger });
    await gateway.start();
    try {
      await responder.refuseUnreadable({ tenant: TENANT, device: 'features-unreadable' }, 'Unrecognized key: "colour"');
      await vi.waitFor(() => expect(logger.lines.find((l) => l.message.startsWith('the platform could not read a message this gateway sent'))?.fields).toMatchObject({ code: 'INVALID_REQUEST', refusal: 'Unrecognized key: "colour"' }), { timeout: 10_000, interval: 20 });
      expect(await segmentEncodingsOf(gateway, responder, { seed: 9, rows: 64, frames: 30, framesPerSegment: 10 })).toEqual([undefined, undefined, undefined]);
    } finally {
      await gateway.close();
    }
  });

  it('asks as soon as it connects when it may compress, before any run, and never when set to none', async () => {
    const { servers, responder } = files;
    const asked = (): number => responder.probes.filter((p) => p.capabilities === true).length;
    const before = asked();
    const compressing = new Gateway({ ...gatewayOptions(servers, 'features-eager'), segmentEncoding: 'auto' }, { logger: memoryLogger() });
    await compressing.start();
    try {
      await vi.waitFor(() => expect(asked()).toBe(before + 1), { timeout: 10_000, interval: 20 });
    } finally {
      await compressing.close();
    }
    const plain = new Gateway({ ...gatewayOptions(servers, 'features-plain'), segmentEncoding: 'none' }, { logger: memoryLogger() });
    await plain.start();
    try {
      expect(await segmentEncodingsOf(plain, responder, { seed: 9, rows: 64, frames: 30, framesPerSegment: 10 })).toEqual([undefined, undefined, undefined]);
      expect(asked()).toBe(before + 1);
    } finally {
      await plain.close();
    }
  });

  it('sends as they are the segments cut before a late answer, and compresses those cut after it', async () => {
    const { servers, responder } = files;
    responder.capabilitiesDelayMs = 4_000;
    const answered = responder.capabilitiesAnswered;
    const gateway = new Gateway({ ...gatewayOptions(servers, 'features-late'), segmentEncoding: 'br' }, { logger: memoryLogger() });
    await gateway.start();
    try {
      const rows = 64;
      const frames = 30;
      const bytes = synthesizeXaRun({ seed: 9, rows, columns: rows, frames, bitsStored: 8 }).bytes;
      const header = bytes.subarray(0, bytes.length - frames * FRAME);
      const frameRange = (first: number, count: number): Uint8Array => bytes.subarray(header.length + first * FRAME, header.length + (first + count) * FRAME);
      const seen = responder.segmented.length;
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      await source.push(frameRange(0, 10));
      await vi.waitFor(() => expect(responder.segmented.slice(seen).some((s) => s.kind === 'segment')).toBe(true), { timeout: 10_000, interval: 20 });
      await vi.waitFor(() => expect(responder.capabilitiesAnswered).toBe(answered + 1), { timeout: 10_000, interval: 20 });
      await source.push(frameRange(10, 20));
      await source.end();
      const result = await source.result;
      expect(result.status).toBe('ok');
      const segments = responder.segmented.filter((s): s is SegmentV1 => s.kind === 'segment' && s.requestId === result.requestId);
      expect(segments.sort((a, b) => a.index - b.index).map((s) => s.object.encoding)).toEqual([undefined, 'br', 'br']);
    } finally {
      responder.capabilitiesDelayMs = 0;
      await gateway.close();
    }
  }, 30_000);
});
