import { createHash } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { ArteriaError, type SegmentV1 } from '@arteria/protocol';
import { putOnce } from '../src/upload/put-once.js';
import type { PartStore } from '../src/upload/part-store.js';
import { BUCKET, TENANT, gatewayOptions, listKeys, memoryLogger, objectBytes, serversForFile, withGrants } from './helpers.js';

const ROWS = 32;
const FRAMES = 40;
const FRAME_BYTES = ROWS * ROWS;

const files = serversForFile();

const run = (seed: number): { header: Uint8Array; pixels: Uint8Array } => {
  const bytes = synthesizeXaRun({ seed, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 }).bytes;
  return { header: bytes.subarray(0, bytes.length - FRAMES * FRAME_BYTES), pixels: bytes.subarray(bytes.length - FRAMES * FRAME_BYTES) };
};

/**
 * An S3 client whose first PutObject of a key ending in `suffix` reaches the store, which
 * stores the object, and then loses the answer (a connection cut on the way back, or the
 * gateway killed at that moment). No SDK retry: the gateway sees the failure.
 */
function losingAnswerTo(suffix: string): { client: S3Client; lost: () => boolean } {
  // As the gateway's own client (createS3Client), without the SDK's retries.
  const client = new S3Client({
    endpoint: files.servers.s3Endpoint, region: 'us-east-1', credentials: { accessKeyId: 'presigned-urls-only', secretAccessKey: 'none' }, forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 1,
  });
  let lost = false;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (!lost && context.commandName === 'PutObjectCommand' && (args.input as { Key?: string }).Key?.endsWith(suffix) === true) {
        lost = true;
        throw Object.assign(new Error('the connection closed before the answer arrived'), { name: 'AnswerLost' });
      }
      return out;
    },
    { step: 'deserialize', priority: 'high', name: 'loseOneAnswer' },
  );
  return { client, lost: () => lost };
}

/** Fails the test with a message instead of hanging until the test's own timeout. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const segmentsOf = (device: string): SegmentV1[] => files.responder.segmented.filter((s): s is SegmentV1 => s.device === device && s.kind === 'segment');

/** Every frame once, in order, in the objects the segments name (expanded where they are compressed). */
async function expectWholeRun(segments: SegmentV1[], pixels: Uint8Array): Promise<void> {
  expect(segments.map((s) => s.index)).toEqual(segments.map((_, i) => i));
  const stored = await Promise.all(segments.map(async (s) => {
    const bytes = await objectBytes(files.servers.s3, s.object.uri);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(s.object.sha256);
    return s.object.encoding === 'br' ? brotliDecompressSync(bytes) : bytes;
  }));
  expect(Buffer.concat(stored).equals(Buffer.from(pixels))).toBe(true);
}

/**
 * Objects are written once (an upload grant for a stored key is refused OBJECT_EXISTS). A
 * PUT whose answer was lost after the store took it is retried in the same process with the
 * URL already granted; a gateway started again asks for a new grant, which is refused: such
 * a segment (or one-part run) used to be refused at every retry, and the run never finished
 * (the end-to-end restart test's hang under load).
 */
describe('segmented runs: a segment stored without the gateway knowing it', () => {
  it('a segment PUT whose answer is lost is done: the stored object is recognised, the run finishes', async () => {
    const device = 'seg-lost-answer';
    const { client, lost } = losingAnswerTo('/s1');
    const gateway = new Gateway(withGrants(gatewayOptions(files.servers, device, { resendIntervalMs: 300 })), { logger: memoryLogger(), s3Client: client });
    const errors: string[] = [];
    gateway.on('error', ({ error }) => errors.push(error.code));
    await gateway.start();
    try {
      const { header, pixels } = run(31);
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      for (let frame = 0; frame < FRAMES; frame += 10) await source.push(pixels.subarray(frame * FRAME_BYTES, (frame + 10) * FRAME_BYTES));
      await source.end();
      const result = await within(source.result, 20_000, 'the result of a run whose segment PUT lost its answer');
      expect(result).toMatchObject({ status: 'ok', output: { frames: FRAMES } });
      expect(lost()).toBe(true);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors).not.toContain('OBJECT_EXISTS');
      await expectWholeRun(segmentsOf(device), pixels);
    } finally {
      await gateway.close();
      client.destroy();
    }
  }, 60_000);

  it.each(['none', 'br'] as const)('a gateway stopped after the store took a segment and before it knew finishes the run on its next start, each segment announced once (segments encoded: %s)', async (segmentEncoding) => {
    const device = `seg-restart-stored-${segmentEncoding}`;
    const options = withGrants(gatewayOptions(files.servers, device, { segmentEncoding }));
    const { header, pixels } = run(32);
    const { client, lost } = losingAnswerTo('/s1');
    const first = new Gateway(options, { logger: memoryLogger(), s3Client: client });
    const failed = new Promise<void>((resolve) => first.on('error', () => resolve()));
    await first.start();
    const source = await first.openFrameSource(header, { framesPerSegment: 10 });
    await source.push(pixels.subarray(0, 25 * FRAME_BYTES));
    // The store holds s1; the gateway stops before it retries (resendIntervalMs 5 s), as if killed.
    await within(failed, 10_000, 'the lost answer');
    expect(lost()).toBe(true);
    await first.close();
    client.destroy();

    const second = new Gateway(options, { logger: memoryLogger() });
    await second.start();
    try {
      const again = await second.openFrameSource(header, { framesPerSegment: 10 });
      expect(again.framesAccepted).toBe(25);
      await again.push(pixels.subarray(25 * FRAME_BYTES));
      await again.end();
      const result = await within(again.result, 20_000, 'the result after the restart');
      expect(result).toMatchObject({ status: 'ok', output: { frames: FRAMES } });
      const segments = segmentsOf(device);
      await expectWholeRun(segments, pixels);
      expect(segments[1]).toMatchObject({ firstFrame: 10, frameCount: 10 });
      // Compressed again after the restart to the very bytes the store took before it: the same key, the same SHA-256.
      expect(segments.every((s) => s.object.encoding === (segmentEncoding === 'br' ? 'br' : undefined))).toBe(true);
    } finally {
      await second.close();
    }
  }, 60_000);

  it('a whole-file run of one part whose PUT the store took before the gateway stopped is recognised as stored on the next start', async () => {
    const device = 'file-lost-answer';
    const options = withGrants(gatewayOptions(files.servers, device, { resendIntervalMs: 1_000 }));
    const { client, lost } = losingAnswerTo('');
    const first = new Gateway(options, { logger: memoryLogger(), s3Client: client });
    const failed = new Promise<void>((resolve) => first.on('error', () => resolve()));
    await first.start();
    const bytes = synthesizeXaRun({ seed: 33, rows: ROWS, columns: ROWS, frames: 4, bitsStored: 8 }).bytes;
    const sent = first.send({ bytes, name: 'lost.dcm' });
    sent.catch(() => undefined);
    await within(failed, 10_000, 'the lost answer');
    expect(lost()).toBe(true);
    await first.close();
    await expect(sent).rejects.toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    client.destroy();

    const second = new Gateway(options, { logger: memoryLogger() });
    const results: string[] = [];
    second.on('result', ({ result }) => results.push(result.status));
    await second.start();
    try {
      await within(new Promise<void>((resolve) => second.on('result', () => resolve())), 20_000, 'the result after the restart');
      expect(results).toEqual(['ok']);
      expect(files.responder.requestsOf(device).every((s) => s.objectComplete)).toBe(true);
    } finally {
      await second.close();
    }
  }, 60_000);
});

describe('a one-part run whose key holds other bytes', () => {
  it('fails with CHECKSUM_MISMATCH instead of being retried forever', async () => {
    const device = 'file-other-bytes';
    const options = withGrants(gatewayOptions(files.servers, device, { resendIntervalMs: 500 }));
    const { client } = losingAnswerTo('');
    const first = new Gateway(options, { logger: memoryLogger(), s3Client: client });
    const failed = new Promise<void>((resolve) => first.on('error', () => resolve()));
    await first.start();
    const sent = first.send({ bytes: synthesizeXaRun({ seed: 34, rows: ROWS, columns: ROWS, frames: 4, bitsStored: 8 }).bytes, name: 'other.dcm' });
    sent.catch(() => undefined);
    await within(failed, 10_000, 'the lost answer');
    await first.close();
    client.destroy();
    // The stored object is replaced with other bytes behind the gateway's back.
    const [key] = await listKeys(files.servers.s3, `${TENANT}/${device}/`);
    expect(key).toBeDefined();
    await files.servers.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from('not the run') }));

    const second = new Gateway(options, { logger: memoryLogger() });
    const ended = new Promise<string>((resolve) => second.on('entry', ({ state }) => (state === 'failed' || state === 'done' ? resolve(state) : undefined)));
    const errors: string[] = [];
    second.on('error', ({ error }) => errors.push(error.code));
    await second.start();
    try {
      expect(await within(ended, 20_000, 'the run ending')).toBe('failed');
      expect(errors.filter((code) => code === 'CHECKSUM_MISMATCH').length).toBeLessThanOrEqual(1);
      expect(files.responder.requestsOf(device)).toEqual([]);
    } finally {
      await second.close();
    }
  }, 60_000);
});

describe('putOnce', () => {
  const exists = new ArteriaError('OBJECT_EXISTS', 'already stored');
  const store = (head: { size: number; etag: string | undefined } | undefined): PartStore =>
    ({ bucket: 'b', putObject: () => Promise.reject(exists), head: () => Promise.resolve(head) }) as unknown as PartStore;
  const bytes = Buffer.from('segment bytes');
  const md5 = createHash('md5').update(bytes).digest('hex');
  const otherMd5 = createHash('md5').update('other bytes').digest('hex');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const otherSha256 = createHash('sha256').update('other bytes').digest('hex');
  const signal = new AbortController().signal;

  it('counts an object holding the same bytes as written', async () => {
    await expect(putOnce(store({ size: bytes.length, etag: md5 }), 'k', bytes, signal)).resolves.toBe(md5);
    // The embedded store's ETag: the SHA-256 of the bytes.
    await expect(putOnce(store({ size: bytes.length, etag: sha256 }), 'k', bytes, signal)).resolves.toBe(sha256);
    // A store whose ETag is not an MD5 says only the size.
    await expect(putOnce(store({ size: bytes.length, etag: 'abc-2' }), 'k', bytes, signal)).resolves.toBe('abc-2');
  });

  it('refuses an object with other bytes (CHECKSUM_MISMATCH) and passes other errors on', async () => {
    await expect(putOnce(store({ size: bytes.length, etag: otherMd5 }), 'k', bytes, signal)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    await expect(putOnce(store({ size: bytes.length, etag: otherSha256 }), 'k', bytes, signal)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    await expect(putOnce(store({ size: 3, etag: undefined }), 'k', bytes, signal)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    await expect(putOnce(store(undefined), 'k', bytes, signal)).rejects.toBe(exists);
    const failing = { bucket: 'b', putObject: () => Promise.reject(new ArteriaError('NOT_AUTHORIZED', 'no')) } as unknown as PartStore;
    await expect(putOnce(failing, 'k', bytes, signal)).rejects.toMatchObject({ code: 'NOT_AUTHORIZED' });
  });
});
