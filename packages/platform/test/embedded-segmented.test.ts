// Runs sent while they are acquired: the gateway's side of the protocol (header, segments
// in any order, end) against the embedded platform, with the algorithm's incremental
// contract in the worker and the run's checkpoints in SQLite.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { SqliteRunCheckpoints } from '@arteria/engine-sqlite';
import { MAX_SEGMENT_BYTES, type SegmentEncoding } from '@arteria/protocol';
import { runAlgorithmOnDicom, type Algorithm } from '@arteria/sdk';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, startPlatformWithDevice, tempDir } from './support/platform.js';
import { SegmentedRun } from './support/segmented-run.js';

const CONTRAST_INJECTION = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));
const bucket = 'arteria-runs';
const layout = { rows: 64, columns: 64, frames: 90, bytesPerSample: 1 };
const run = synthesizeXaRun({ seed: 51, rows: 64, columns: 64, frames: 90, bitsStored: 8, contrast: { startFrame: 60, peakFrame: 75, endFrame: 88 } }).bytes;

async function oneShot(): Promise<unknown> {
  const { default: algorithm } = (await import('@arteria/contrast-injection')) as { default: Algorithm };
  return JSON.parse(JSON.stringify(await runAlgorithmOnDicom(algorithm, new Uint8Array(run))));
}

describe('embedded platform: runs sent while they are acquired', () => {
  let platform: Awaited<ReturnType<typeof startPlatformWithDevice>>;
  let uid = 0;
  const segmented = (framesPerSegment = 10, encoding?: SegmentEncoding): SegmentedRun =>
    new SegmentedRun(platform.device, bucket, run, layout, 'contrast-injection@^1', `1.2.826.0.1.3680043.10.12.${++uid}`, framesPerSegment, encoding);

  beforeAll(async () => {
    platform = await startPlatformWithDevice('segmented', (tmp) => ({ dataDir: path.join(tmp, 'data'), overrides: { algorithmDirs: [fixtureAlgorithm('echo'), CONTRAST_INJECTION] } }));
  });
  afterAll(async () => platform.close());

  it('answers once with the one-shot output, after a partial result for the contrast it saw arrive', async () => {
    const r = segmented();
    await r.sendAll(platform.s3);
    const result = await platform.device.next((x) => x.requestId === r.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.output).toEqual(await oneShot());
    const partials = platform.device.partials.filter((p) => p.requestId === r.id);
    expect(partials.map((p) => [p.seq, p.event.key])).toEqual([[0, 'contrast-arrival']]);
    expect(partials[0]!.framesSeen).toBeLessThan(90);
    expect(platform.device.results.filter((x) => x.requestId === r.id)).toHaveLength(1);
  });

  it('takes the steps after the opening in any order: the end first, then the segments last to first', async () => {
    const r = segmented(7);
    await r.upload(platform.s3);
    await r.send(r.open);
    await r.send(r.end);
    for (const segment of [...r.segments].reverse()) await r.send(segment);
    const result = await platform.device.next((x) => x.requestId === r.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.output).toEqual(await oneShot());
  });

  it('reads segments stored Brotli-compressed (encoding br): the one-shot output, from fewer stored bytes', async () => {
    const r = segmented(10, 'br');
    expect(r.segments.reduce((n, s) => n + s.object.size, 0)).toBeLessThan(layout.rows * layout.columns * layout.frames);
    await r.sendAll(platform.s3);
    const result = await platform.device.next((x) => x.requestId === r.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.output).toEqual(await oneShot());
  });

  it.each([
    ['expands past the most a segment may hold (a compression bomb)', () => brotliCompressSync(Buffer.alloc(MAX_SEGMENT_BYTES + 1)), 'expands past'],
    // Cut short: random bytes are not reliably invalid (some begin a valid, empty stream).
    ['is not Brotli data (a stream cut short)', () => brotliCompressSync(run.subarray(run.length - layout.rows * layout.columns * 10)).subarray(0, 1000), 'not valid Brotli'],
    ['expands more than 32 times its stored size (10 blank frames, the right size)', () => brotliCompressSync(Buffer.alloc(layout.rows * layout.columns * 10)), 'times its stored size'],
    ['expands to other than its frames', () => brotliCompressSync(run.subarray(run.length - layout.rows * layout.columns * 9)), 'holds'],
  ])('ends a run whose compressed segment %s with SEGMENT_MISMATCH, and goes on with other runs', async (_, bytes, says) => {
    const r = segmented(10, 'br');
    const hostile = r.storedAs(3, bytes(), 'br');
    await r.sendAll(platform.s3, r.segments.map((segment) => (segment.index === 3 ? hostile : segment)));
    const refused = await platform.device.next((x) => x.requestId === r.id);
    expect(refused).toMatchObject({ status: 'rejected', error: { code: 'SEGMENT_MISMATCH' } });
    expect(refused.error?.message).toContain(says);
    const next = segmented(30, 'br');
    await next.sendAll(platform.s3);
    expect(await platform.device.next((x) => x.requestId === next.id)).toMatchObject({ status: 'ok' });
  });

  it('ends a run whose end does not match its segments with SEGMENT_MISMATCH, and a run with an altered segment with CHECKSUM_MISMATCH', async () => {
    const wrongDigest = segmented();
    await wrongDigest.upload(platform.s3);
    await wrongDigest.send(wrongDigest.open);
    for (const segment of wrongDigest.segments) await wrongDigest.send(segment);
    await wrongDigest.send({ ...wrongDigest.end, digest: 'f'.repeat(64) });
    const refused = await platform.device.next((x) => x.requestId === wrongDigest.id);
    expect(refused).toMatchObject({ status: 'rejected', error: { code: 'SEGMENT_MISMATCH' } });

    const altered = segmented();
    await altered.upload(platform.s3);
    await altered.send(altered.open);
    const [first, ...rest] = altered.segments;
    await altered.send({ ...first!, object: { ...first!.object, sha256: 'e'.repeat(64) } });
    for (const segment of rest) await altered.send(segment);
    await altered.send(altered.end);
    expect(await platform.device.next((x) => x.requestId === altered.id)).toMatchObject({ status: 'rejected', error: { code: 'CHECKSUM_MISMATCH' } });
  });
});

describe('embedded platform: a run whose platform stops mid-run', () => {
  it('resumes from the checkpoint on the next start: one result, equal to the one-shot output, each partial result once', { timeout: 180_000 }, async () => {
    const tmp = await tempDir('segmented-restart');
    const dataDir = path.join(tmp.dir, 'data');
    const overrides = { algorithmDirs: [fixtureAlgorithm('echo'), CONTRAST_INJECTION] };
    try {
      let started = await startPlatform(dataDir, overrides);
      let device = await TestDevice.connect(started.platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
      const r = new SegmentedRun(device, bucket, run, layout, 'contrast-injection@^1', '1.2.826.0.1.3680043.10.12.900', 10);
      await r.upload(started.s3);
      await r.send(r.open);
      for (const segment of r.segments.slice(0, 7)) await r.send(segment);
      // Wait until seven segments are folded into the checkpoint (the contrast arrived by then).
      const checkpoints = new SqliteRunCheckpoints({ path: path.join(dataDir, 'platform.db') });
      await vi.waitFor(async () => expect((await checkpoints.get(r.id))?.next).toBe(7), { timeout: 30_000, interval: 50 });
      await vi.waitFor(() => expect(device.partials).toHaveLength(1), { timeout: 10_000, interval: 50 });
      await checkpoints.close();
      const before = [...device.partials];
      await device.close();
      started.s3.destroy();
      await started.platform.close();

      started = await startPlatform(dataDir, overrides);
      device = await TestDevice.connect(started.platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
      const rest = new SegmentedRun(device, bucket, run, layout, 'contrast-injection@^1', '1.2.826.0.1.3680043.10.12.900', 10);
      for (const segment of rest.segments.slice(7)) await rest.send(segment);
      await rest.send(rest.end);
      const result = await device.next((x) => x.requestId === r.id);
      expect(result.status, JSON.stringify(result.error)).toBe('ok');
      expect(result.output).toEqual(await oneShot());
      expect(before.map((p) => p.seq)).toEqual([0]);
      expect(device.partials).toEqual([]);
      await device.close();
      started.s3.destroy();
      await started.platform.close();
    } finally {
      await tmp.remove();
    }
  });
});
