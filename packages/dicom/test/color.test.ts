import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertMultiFrameRun, decodeFrames, decodeRun, JPEG_BASELINE, JPEG_LOSSLESS_SV1, openFrameStream, readHeader, readSegmentedHeader, synthesizeXaRun } from '@arteria/dicom';
import { writeColorRun } from '@arteria/testing';
import { expectArteriaError, scratch, transform } from './helpers.js';

/** Color runs, encoded by DCMTK as a video capture or a viewer's export would be, decoded to luminance. */
describe('color runs', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => tmp.cleanup());

  const rows = 24;
  const columns = 20;
  // Saturated, varying colors: any mistake in sample order or weights shows.
  const rgb = (f: number, p: number): [number, number, number] => [(p * 7 + f * 40) & 255, (p * 13 + 90) & 255, (p * 3 + f * 11) & 255];
  const color = writeColorRun({ rows, columns, frames: 3, rgb });
  const bt601 = (f: number, p: number): number => {
    const [r, g, b] = rgb(f, p);
    return Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  };
  const luma = (bytes: Uint8Array): number[] => Array.from(decodeFrames(bytes).frames.pixels);

  it('hands native RGB to algorithms as 8-bit MONOCHROME2 luminance (ITU-R BT.601)', () => {
    const { header, frames } = decodeFrames(color);
    expect(header).toMatchObject({ samplesPerPixel: 3, photometricInterpretation: 'RGB' });
    expect(frames).toMatchObject({ rows, columns, frameCount: 3, bitsStored: 8, photometric: 'MONOCHROME2' });
    const expected = Array.from({ length: 3 * rows * columns }, (_, i) => bt601(Math.floor(i / (rows * columns)), i % (rows * columns)));
    const off = Array.from(frames.pixels).filter((v, i) => Math.abs(v - expected[i]!) > 0.5 + 1e-9).length;
    expect(off).toBe(0);
  });

  it('keeps a gray pixel (R = G = B) exactly: a grayscale run captured in color is the same run', () => {
    const gray = synthesizeXaRun({ seed: 31, rows, columns, frames: 4, bitsStored: 8 });
    const samples = decodeFrames(gray.bytes).frames.pixels;
    const captured = writeColorRun({ rows, columns, frames: 4, rgb: (f, p) => { const v = samples[f * rows * columns + p]!; return [v, v, v]; } });
    expect(luma(captured)).toEqual(Array.from(samples));
  });

  it('reads color-by-plane as color-by-pixel', async () => {
    const planar = await transform(tmp.dir, await transform(tmp.dir, color, 'dcmcjpeg', ['+e1']), 'dcmdjpeg', ['+pl']);
    expect(readHeader(planar).planarConfiguration).toBe(1);
    expect(luma(planar)).toEqual(luma(color));
  });

  it('decodes JPEG Lossless RGB to the same luminance as the native run', async () => {
    const encoded = await transform(tmp.dir, color, 'dcmcjpeg', ['+e1']);
    const { header, frames } = await decodeRun(encoded);
    expect(header.transferSyntaxUid).toBe(JPEG_LOSSLESS_SV1);
    expect(Array.from(frames.pixels)).toEqual(luma(color));
  });

  it('decodes JPEG Baseline YBR_FULL_422 to the Y that DCMTK decodes, interleaved or by plane', async () => {
    const encoded = await transform(tmp.dir, color, 'dcmcjpeg', ['+eb']);
    const { header, frames } = await decodeRun(encoded);
    expect(header).toMatchObject({ transferSyntaxUid: JPEG_BASELINE, photometricInterpretation: 'YBR_FULL_422' });
    // +cn: DCMTK's decoder without its color conversion, so the file holds Y Cb Cr (YBR_FULL).
    for (const flags of [['+cn', '+px'], ['+cn', '+pl']]) {
      const byDcmtk = await transform(tmp.dir, encoded, 'dcmdjpeg', flags);
      expect(readHeader(byDcmtk).photometricInterpretation).toBe('YBR_FULL');
      expect(Array.from(frames.pixels)).toEqual(luma(byDcmtk));
    }
  });

  it('is read whole by the streaming decoder, and never sent in segments', async () => {
    async function* once(): AsyncGenerator<Uint8Array> {
      yield await Promise.resolve(color);
    }
    expect((await openFrameStream(once(), color.length)).kind).toBe('whole');
    expect(expectArteriaError(() => readSegmentedHeader(color), 'UNSUPPORTED_DICOM')).toMatch(/color runs are sent whole/);
  });

  it('refuses what it cannot decode, by name', async () => {
    const header = readHeader(color);
    expect(() => assertMultiFrameRun(header)).not.toThrow();
    const rle = await transform(tmp.dir, color, 'dcmcrle', []);
    expect(expectArteriaError(() => assertMultiFrameRun(readHeader(rle)), 'UNSUPPORTED_DICOM')).toMatch(/RLE Lossless/);
    expect(expectArteriaError(() => assertMultiFrameRun({ ...header, photometricInterpretation: 'PALETTE COLOR' }), 'UNSUPPORTED_DICOM')).toMatch(/PALETTE COLOR" with 3 samples/);
    expect(expectArteriaError(() => assertMultiFrameRun({ ...header, photometricInterpretation: 'YBR_FULL_422' }), 'UNSUPPORTED_DICOM')).toMatch(/uncompressed pixels/);
    expect(expectArteriaError(() => assertMultiFrameRun({ ...header, bitsAllocated: 16, bitsStored: 16 }), 'UNSUPPORTED_DICOM')).toMatch(/8-bit samples/);
    expect(expectArteriaError(() => assertMultiFrameRun({ ...header, samplesPerPixel: 4 }), 'UNSUPPORTED_DICOM')).toMatch(/SamplesPerPixel 4/);
  });
});
