import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import type { SegmentV1 } from '@arteria/protocol';
import { SegmentUploads } from '../src/segmented/segment-uploads.js';
import type { SegmentRecord } from '../src/outbox/segment-journal.js';
import { gatewayOptions, memoryLogger, objectBytes, serversForFile, withGrants } from './helpers.js';

const ROWS = 32;
const FRAMES = 40;
const FRAME_BYTES = ROWS * ROWS;

const files = serversForFile();

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}
const deferred = (): Deferred => {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/**
 * An S3 client (as the gateway's own, without retries) that counts the segment PUTs on
 * their way at once and holds the PUT of segment 0 until segment 1's is stored, so the
 * uploads finish out of order.
 */
function countingClient(): { client: S3Client; maxInFlight: () => number; stored: string[] } {
  const client = new S3Client({
    endpoint: files.servers.s3Endpoint, region: 'us-east-1', credentials: { accessKeyId: 'presigned-urls-only', secretAccessKey: 'none' }, forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 1,
  });
  let inFlight = 0;
  let max = 0;
  const stored: string[] = [];
  const firstStored = deferred();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const segment = /\/(s\d+)$/.exec((args.input as { Key?: string }).Key ?? '')?.[1];
      if (context.commandName !== 'PutObjectCommand' || segment === undefined) return next(args);
      inFlight += 1;
      max = Math.max(max, inFlight);
      try {
        if (segment === 's0') await firstStored.promise;
        else await new Promise((resolve) => setTimeout(resolve, 30));
        const out = await next(args);
        stored.push(segment);
        if (segment === 's1') firstStored.resolve();
        return out;
      } finally {
        inFlight -= 1;
      }
    },
    { step: 'deserialize', priority: 'high', name: 'countSegmentPuts' },
  );
  return { client, maxInFlight: () => max, stored };
}

describe('segmented runs: segments uploaded several at once, announced in order', () => {
  it('keeps at most uploadConcurrency segments on their way, and announces them in index order whatever order their uploads finish in', async () => {
    const device = 'seg-pipeline';
    const { client, maxInFlight, stored } = countingClient();
    const gateway = new Gateway(withGrants(gatewayOptions(files.servers, device, { uploadConcurrency: 2 })), { logger: memoryLogger(), s3Client: client });
    await gateway.start();
    try {
      const bytes = synthesizeXaRun({ seed: 41, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 }).bytes;
      const header = bytes.subarray(0, bytes.length - FRAMES * FRAME_BYTES);
      const pixels = bytes.subarray(bytes.length - FRAMES * FRAME_BYTES);
      const source = await gateway.openFrameSource(header, { framesPerSegment: 5 });
      await source.push(pixels);
      await source.end();
      expect(await source.result).toMatchObject({ status: 'ok', output: { frames: FRAMES, segments: 8 } });
      // Segment 1 was stored before segment 0 (held until then): two were on their way at once, never more.
      expect(stored.indexOf('s1')).toBeLessThan(stored.indexOf('s0'));
      expect(maxInFlight()).toBe(2);
      const steps = files.responder.segmented.filter((s) => s.device === device);
      expect(steps.map((s) => (s.kind === 'segment' ? s.index : s.kind))).toEqual(['run-open', 0, 1, 2, 3, 4, 5, 6, 7, 'run-end']);
      const segments = steps.filter((s): s is SegmentV1 => s.kind === 'segment');
      const objects = await Promise.all(segments.map((s) => objectBytes(files.servers.s3, s.object.uri)));
      expect(Buffer.concat(objects).equals(Buffer.from(pixels))).toBe(true);
    } finally {
      await gateway.close();
      client.destroy();
    }
  }, 60_000);
});

describe('SegmentUploads', () => {
  const segment = (index: number): SegmentRecord => ({ index, firstFrame: index, frameCount: 1, uri: `s3://b/k/s${index}`, size: 1, sha256: 'a'.repeat(64), acquired: 0, uploadedAt: undefined, announcedAt: undefined, announcements: 0 });

  it('has room for `limit` uploads, starts an index once at a time, and runs one announcement round at a time (once more when asked during one)', async () => {
    const uploads = new Map<number, Deferred>();
    let rounds = 0;
    let concurrentRounds = 0;
    let maxConcurrentRounds = 0;
    const round = deferred();
    const pipeline = new SegmentUploads({
      limit: 2,
      upload: (s) => {
        const d = deferred();
        uploads.set(s.index, d);
        return d.promise;
      },
      announce: async () => {
        rounds += 1;
        concurrentRounds += 1;
        maxConcurrentRounds = Math.max(maxConcurrentRounds, concurrentRounds);
        if (rounds === 1) await round.promise;
        concurrentRounds -= 1;
      },
      progressed: () => undefined,
    });
    pipeline.start(segment(0));
    pipeline.start(segment(0));
    expect(pipeline.inFlight).toBe(1);
    pipeline.start(segment(1));
    expect(pipeline.hasRoom).toBe(false);
    uploads.get(1)?.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(pipeline.inFlight).toBe(1);
    expect(rounds).toBe(1);
    uploads.get(0)?.resolve(); // asks for a round while the first one runs
    await new Promise((resolve) => setImmediate(resolve));
    round.resolve();
    await pipeline.drain();
    expect(rounds).toBe(2);
    expect(maxConcurrentRounds).toBe(1);
  });

  it('keeps the first failure for the follower, throws it once, and drain() waits for every upload', async () => {
    const uploads = new Map<number, Deferred>();
    const pipeline = new SegmentUploads({
      limit: 3,
      upload: (s) => {
        const d = deferred();
        uploads.set(s.index, d);
        return d.promise;
      },
      announce: () => Promise.resolve(),
      progressed: () => undefined,
    });
    for (const i of [0, 1, 2]) pipeline.start(segment(i));
    uploads.get(1)?.reject(new Error('first'));
    uploads.get(0)?.reject(new Error('second'));
    let drained = false;
    const draining = pipeline.drain().finally(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false); // segment 2 is still on its way
    uploads.get(2)?.resolve();
    await expect(draining).rejects.toThrow('first');
    expect(() => pipeline.throwIfFailed()).not.toThrow();
  });
});
