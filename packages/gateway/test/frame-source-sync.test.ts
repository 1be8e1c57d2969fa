import { readlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { MAX_SEGMENT_BYTES } from '@arteria/protocol';
import { Gateway } from '@arteria/gateway';
import { gatewayOptions, memoryLogger, startServersWithResponder, type Servers } from './helpers.js';

const ROWS = 32;
const FRAMES = 60;
const FRAME_BYTES = ROWS * ROWS;

let servers: Servers;

beforeAll(async () => {
  ({ servers } = await startServersWithResponder());
});
afterAll(() => servers?.close());
afterEach(() => {
  vi.restoreAllMocks();
});

const run = (seed: number): { header: Uint8Array; pixels: Uint8Array } => {
  const bytes = synthesizeXaRun({ seed, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 }).bytes;
  return { header: bytes.subarray(0, bytes.length - FRAMES * FRAME_BYTES), pixels: bytes.subarray(bytes.length - FRAMES * FRAME_BYTES) };
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Watches every file handle of this process: the fsyncs of a frame source's spool (and how
 * many of its bytes each made durable), and every read of the spool (the segment cutter's).
 */
async function watchSpool(isSpool: (file: string) => boolean): Promise<{ syncs: number; durableBytes: number; readsBeyondDurable: string[] }> {
  const probe = await open(path.join(servers.directory, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const seen = { syncs: 0, durableBytes: 0, readsBeyondDurable: [] as string[] };
  const fileOf = (handle: FileHandle): string => readlinkSync(`/proc/self/fd/${handle.fd}`);
  // The originals, taken unbound: each is called on the handle the spy was called on.
  const original = <T>(name: 'datasync' | 'read'): T => Object.getOwnPropertyDescriptor(proto, name)?.value as T;
  const datasync = original<(this: FileHandle) => Promise<void>>('datasync');
  vi.spyOn(proto, 'datasync').mockImplementation(async function (this: FileHandle) {
    if (!isSpool(fileOf(this))) return datasync.call(this);
    const { size } = await this.stat(); // written before the fsync: durable once it returns
    await datasync.call(this);
    seen.syncs++;
    seen.durableBytes = Math.max(seen.durableBytes, size);
  });
  const read = original<(this: FileHandle, buffer: Buffer, offset: number, length: number, position: number) => Promise<{ bytesRead: number; buffer: Buffer }>>('read');
  vi.spyOn(proto, 'read').mockImplementation(function (this: FileHandle, ...args: unknown[]) {
    const [buffer, offset, length, position] = args as [Buffer, number, number, number];
    if (isSpool(fileOf(this)) && position + length > seen.durableBytes) seen.readsBeyondDurable.push(`${position}+${length} > ${seen.durableBytes}`);
    return read.call(this, buffer, offset, length, position);
  });
  return seen;
}

describe('a frame source acknowledges frames once durable, with fsyncs shared across frames', () => {
  it('at 30 fps, one frame per push kept in flight: each push resolves only after an fsync that covered it, far fewer fsyncs than frames, and no segment cut from frames not yet durable', async () => {
    const gateway = new Gateway(gatewayOptions(servers, 'fs-30fps'), { logger: memoryLogger() });
    await gateway.start();
    try {
      const { header, pixels } = run(51);
      const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
      const seen = await watchSpool((file) => file.endsWith(`${source.entryId}-frames`));
      const acknowledged: Promise<void>[] = [];
      const early: string[] = [];
      for (let frame = 0; frame < FRAMES; frame++) {
        const end = (frame + 1) * FRAME_BYTES;
        acknowledged.push(
          source.push(pixels.subarray(frame * FRAME_BYTES, end)).then(() => {
            if (seen.durableBytes < end) early.push(`frame ${frame} acknowledged with ${seen.durableBytes} bytes durable`);
            if (source.framesAccepted < frame + 1) early.push(`frame ${frame} acknowledged with framesAccepted ${source.framesAccepted}`);
          }),
        );
        await sleep(1000 / 30);
      }
      await Promise.all(acknowledged);
      await source.end();
      expect(await source.result).toMatchObject({ status: 'ok', output: { frames: FRAMES } });
      expect(early).toEqual([]);
      expect(seen.readsBeyondDurable).toEqual([]);
      // 2 s of frames at 30 fps: about one fsync per 100 ms instead of 60 (one a frame).
      expect(seen.syncs).toBeGreaterThan(0);
      expect(seen.syncs).toBeLessThanOrEqual(FRAMES / 2);
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('cuts no segment larger than the platform takes (MAX_SEGMENT_BYTES), whatever framesPerSegment asks', async () => {
    const options = gatewayOptions(servers, 'fs-big-frames');
    const gateway = new Gateway(options, { logger: memoryLogger() });
    await gateway.start();
    try {
      // 1 MiB frames: 100 a segment would be 100 MiB.
      const bytes = synthesizeXaRun({ seed: 52, rows: 1024, columns: 1024, frames: 2, bitsStored: 8 }).bytes;
      const source = await gateway.openFrameSource(bytes.subarray(0, bytes.length - 2 * 2 ** 20), { framesPerSegment: 100 });
      const db = new Database(options.outboxPath, { readonly: true });
      try {
        const row = db.prepare<[string], { framesPerSegment: number }>('SELECT frames_per_segment AS framesPerSegment FROM segmented_runs WHERE entry_id = ?').get(source.entryId);
        expect(row?.framesPerSegment).toBe(MAX_SEGMENT_BYTES / 2 ** 20);
      } finally {
        db.close();
      }
    } finally {
      await gateway.close();
    }
  }, 60_000);
});
