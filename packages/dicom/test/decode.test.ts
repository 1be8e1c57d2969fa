import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FRAME_TIME_MS, decodeFrames, encapsulateFrames, readHeader, writeXaRun } from '@arteria/dicom';
import { expectArteriaError, modify, scratch, transform } from './helpers.js';

function ramp<T extends Uint8Array | Uint16Array>(pixels: T, modulo: number): T {
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + 3) % modulo;
  return pixels;
}

describe('decodeFrames', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('decodes 16-bit frames into an aligned copy', () => {
    const pixels = ramp(new Uint16Array(16 * 12 * 5), 4096);
    const bytes = writeXaRun({ rows: 16, columns: 12, frames: 5, pixels, bitsStored: 12, frameTimeMs: 50 });
    const { header, frames } = decodeFrames(bytes);
    expect(header.numberOfFrames).toBe(5);
    expect(frames).toMatchObject({ rows: 16, columns: 12, frameCount: 5, bitsStored: 12, photometric: 'MONOCHROME2', frameTimeMs: 50 });
    expect(frames.pixels).toBeInstanceOf(Uint16Array);
    expect(frames.pixels).toEqual(pixels);
    expect(frames.pixels.buffer).not.toBe(bytes.buffer);
    expect(frames.pixels.byteOffset % 2).toBe(0);
  });

  it('decodes 8-bit frames of odd size (padded pixel data)', () => {
    const pixels = ramp(new Uint8Array(7 * 5 * 3), 256);
    const bytes = writeXaRun({ rows: 7, columns: 5, frames: 3, pixels, bitsStored: 8, photometric: 'MONOCHROME1', frameTimeMs: 33.333 });
    const { frames } = decodeFrames(bytes);
    expect(frames.pixels).toBeInstanceOf(Uint8Array);
    expect(frames.pixels).toEqual(pixels);
    expect(frames.photometric).toBe('MONOCHROME1');
    expect(frames.frameTimeMs).toBeCloseTo(33.333, 3);
  });

  it('drops bits above BitsStored', () => {
    const pixels = new Uint16Array([0xf123, 0x0fff, 0x1000, 5, 0xffff, 0x0800, 1, 2]);
    const bytes = writeXaRun({ rows: 2, columns: 2, frames: 2, pixels, bitsStored: 12, frameTimeMs: 50 });
    expect(Array.from(decodeFrames(bytes).frames.pixels)).toEqual([0x123, 0xfff, 0, 5, 0xfff, 0x800, 1, 2]);
  });

  it('with consumeBytes, views the file\'s own pixels instead of copying them', () => {
    const pixels8 = ramp(new Uint8Array(8 * 8 * 3), 256);
    const bytes8 = writeXaRun({ rows: 8, columns: 8, frames: 3, pixels: pixels8, bitsStored: 8, frameTimeMs: 50 });
    const view8 = decodeFrames(bytes8, undefined, { consumeBytes: true }).frames.pixels;
    expect(view8).toEqual(pixels8);
    expect(view8.buffer).toBe(bytes8.buffer);

    const raw16 = new Uint16Array([0xf123, 0x0fff, 0x1000, 5, 0xffff, 0x0800, 1, 2]);
    const bytes16 = writeXaRun({ rows: 2, columns: 2, frames: 2, pixels: raw16, bitsStored: 12, frameTimeMs: 50 });
    const copied = decodeFrames(bytes16).frames.pixels;
    const viewed = decodeFrames(bytes16, undefined, { consumeBytes: true }).frames.pixels;
    expect(viewed).toBeInstanceOf(Uint16Array);
    expect(viewed.buffer).toBe(bytes16.buffer);
    expect(Array.from(viewed)).toEqual(Array.from(copied)); // masked to BitsStored in place

    // At an odd offset 16-bit samples cannot be viewed: they are copied, and the same.
    const shifted = new Uint8Array(bytes16.length + 1);
    shifted.set(bytes16, 1);
    const odd = decodeFrames(shifted.subarray(1), undefined, { consumeBytes: true }).frames.pixels;
    expect(odd.buffer).not.toBe(shifted.buffer);
    expect(Array.from(odd)).toEqual(Array.from(copied));
  });

  it('decodes Implicit VR Little Endian written by DCMTK', async () => {
    const pixels = ramp(new Uint16Array(10 * 9 * 4), 1024);
    const explicit = writeXaRun({ rows: 10, columns: 9, frames: 4, pixels, bitsStored: 10, frameTimeMs: 100 });
    const implicit = await transform(tmp.dir, explicit, 'dcmconv', ['+ti']);
    const { header, frames } = decodeFrames(implicit);
    expect(header.transferSyntaxUid).toBe('1.2.840.10008.1.2');
    expect(header.modality).toBe('XA');
    expect(frames.frameTimeMs).toBe(100);
    expect(frames.pixels).toEqual(pixels);
  });

  it('refuses compressed pixel data in a syntax it does not decode and names the syntax', () => {
    const pixels = ramp(new Uint8Array(32 * 32 * 3), 256);
    const native = writeXaRun({ rows: 32, columns: 32, frames: 3, pixels, bitsStored: 8, frameTimeMs: 66 });
    // A run stored as H.264 video: one fragment of stream bytes (never read: the syntax is refused first).
    const video = encapsulateFrames(native, '1.2.840.10008.1.2.4.102', [new Uint8Array(64).fill(7)]);
    expect(readHeader(video).transferSyntaxUid).toBe('1.2.840.10008.1.2.4.102');
    const message = expectArteriaError(() => decodeFrames(video), 'UNSUPPORTED_TRANSFER_SYNTAX');
    expect(message).toContain('1.2.840.10008.1.2.4.102');
    expect(message).toContain('MPEG-4 AVC/H.264');
  });

  it('refuses truncated pixel data', () => {
    const bytes = writeXaRun({ rows: 8, columns: 8, frames: 4, pixels: new Uint16Array(256), bitsStored: 16, frameTimeMs: 50 });
    expect(expectArteriaError(() => decodeFrames(bytes.subarray(0, bytes.length - 10)), 'INVALID_DICOM')).toMatch(/truncated/);
  });

  it('refuses pixel data whose length does not match the header', async () => {
    const bytes = writeXaRun({ rows: 8, columns: 8, frames: 4, pixels: new Uint16Array(256), bitsStored: 16, frameTimeMs: 50 });
    const moreFrames = await modify(tmp.dir, bytes, ['-m', '(0028,0008)=5']);
    expect(expectArteriaError(() => decodeFrames(moreFrames), 'INVALID_DICOM')).toMatch(/NumberOfFrames 5/);
  });

  it('refuses what is not DICOM or not a grayscale image', () => {
    expectArteriaError(() => decodeFrames(new Uint8Array(1000)), 'INVALID_DICOM');
  });

  it('defaults the frame time when the file gives none', async () => {
    const bytes = writeXaRun({ rows: 4, columns: 4, frames: 2, pixels: new Uint8Array(32), bitsStored: 8, frameTimeMs: 50 });
    const untimed = await modify(tmp.dir, bytes, ['-e', '(0018,1063)', '-e', '(0018,0040)']);
    expect(readHeader(untimed).frameTimeMs).toBeUndefined();
    expect(decodeFrames(untimed).frames.frameTimeMs).toBe(DEFAULT_FRAME_TIME_MS);
  });
});
