import { describe, expect, it } from 'vitest';
import { RLE_LOSSLESS, collectFrames, decodeFrames, encapsulateFrames, openFrameStream, readWhole, writeXaRun, type OpenedRun } from '@arteria/dicom';

function ramp<T extends Uint8Array | Uint16Array>(pixels: T, modulo: number): T {
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 13 + 5) % modulo;
  return pixels;
}

async function open(bytes: Uint8Array, chunkBytes: number, batchBytes?: number): Promise<OpenedRun> {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < bytes.length; at += chunkBytes) {
      await Promise.resolve();
      yield bytes.subarray(at, at + chunkBytes);
    }
  }
  return openFrameStream(chunks(), bytes.length, batchBytes === undefined ? {} : { batchBytes });
}

describe('openFrameStream', () => {
  it('gives the frames of a native run in batches, whatever the chunk and batch sizes', async () => {
    for (const pixels of [ramp(new Uint16Array(24 * 20 * 7), 4096), ramp(new Uint8Array(23 * 19 * 7), 256)]) {
      const [rows, columns] = pixels instanceof Uint16Array ? [24, 20] : [23, 19];
      const bytes = writeXaRun({ rows, columns, frames: 7, pixels, bitsStored: pixels instanceof Uint16Array ? 12 : 8, frameTimeMs: 40 });
      const { header, frames } = decodeFrames(bytes);
      for (const [chunkBytes, batchBytes] of [[7, 1], [100, 3 * rows * columns * 2], [1 << 20, undefined]] as const) {
        const opened = await open(bytes, chunkBytes, batchBytes);
        if (opened.kind !== 'frames') throw new Error('a native run must stream');
        expect(opened.header).toEqual(header);
        const { pixels: _pixels, ...layout } = frames;
        expect(opened.frames).toEqual(layout);
        expect((await collectFrames(opened.frames, opened.batches)).pixels).toEqual(frames.pixels);
      }
    }
  });

  it('collects a compressed run whole, for decodeRun', async () => {
    const pixels = ramp(new Uint8Array(16 * 16 * 3), 256);
    const native = writeXaRun({ rows: 16, columns: 16, frames: 3, pixels, bitsStored: 8, frameTimeMs: 40 });
    // The fragments need not be valid RLE: the transfer syntax alone sends the run down the whole-file path.
    const rle = encapsulateFrames(native, RLE_LOSSLESS, [0, 1, 2].map((f) => pixels.subarray(f * 256, (f + 1) * 256)));
    const opened = await open(rle, 50);
    expect(opened.kind).toBe('whole');
    if (opened.kind === 'whole') expect(Buffer.from(opened.bytes).equals(Buffer.from(rle))).toBe(true);
  });

  it('collects a truncated run whole, so decodeRun reports it as ever', async () => {
    const pixels = ramp(new Uint8Array(16 * 16 * 3), 256);
    const bytes = writeXaRun({ rows: 16, columns: 16, frames: 3, pixels, bitsStored: 8, frameTimeMs: 40 }).subarray(0, -100);
    const opened = await open(bytes, 64);
    expect(opened.kind).toBe('whole');
  });
});

describe('readWhole', () => {
  async function* from(...chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) yield await Promise.resolve(chunk);
  }
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);

  it('gathers chunks into one buffer', async () => {
    expect(await readWhole(from(bytes.subarray(0, 30), bytes.subarray(30, 31), bytes.subarray(31)), 100)).toEqual(bytes);
    expect(await readWhole(from(), 100)).toEqual(new Uint8Array(0));
    // Shorter than declared: what came (the source's own size check fails it).
    expect(await readWhole(from(bytes.subarray(0, 40)), 100)).toEqual(bytes.subarray(0, 40));
  });

  it('returns a run that arrives as one chunk as it is, without a copy', async () => {
    const whole = new Uint8Array(bytes);
    expect(await readWhole(from(whole), 100)).toBe(whole);
    expect(await readWhole(from(whole, new Uint8Array(0)), 100)).toBe(whole);
  });

  it('refuses more bytes than declared (CHECKSUM_MISMATCH), in one chunk or after it', async () => {
    for (const chunks of [[bytes], [bytes.subarray(0, 100), bytes.subarray(0, 1)], [bytes.subarray(0, 60), bytes.subarray(0, 60)]]) {
      await expect(readWhole(from(...chunks), chunks.length === 1 ? 99 : 100)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    }
  });
});
