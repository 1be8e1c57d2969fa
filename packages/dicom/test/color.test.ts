import { readFile, writeFile } from 'node:fs/promises';
import dcmjsCodecs from 'dcmjs-codecs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertMultiFrameRun, decodeFrames, decodeRun, encapsulateFrames, HTJ2K_LOSSLESS, JPEG_2000_LOSSLESS, loadPixelCodecs, JPEG_BASELINE, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, openFrameStream, readHeader, readSegmentedHeader, segmentFrames, synthesizeXaRun } from '@arteria/dicom';
import { writeColorRun } from '@arteria/testing';
import { dcmtk, expectArteriaError, modify, scratch, transform } from './helpers.js';

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

  it('decodes JPEG-LS RGB to the same luminance as the native run', async () => {
    const encoded = await transform(tmp.dir, color, 'dcmcjpls', []);
    const { header, frames } = await decodeRun(encoded);
    expect(header.transferSyntaxUid).toBe(JPEG_LS_LOSSLESS);
    expect(Array.from(frames.pixels)).toEqual(luma(color));
  });

  it('decodes lossless JPEG 2000 color (OpenJPEG, with its reversible color transform) to the native run\'s luminance, labelled RGB or YBR_RCT', async () => {
    const codestreams: Uint8Array[] = [];
    for (let f = 0; f < 3; f++) {
      const ppm = Buffer.concat([Buffer.from(`P6\n${columns} ${rows}\n255\n`, 'latin1'), Buffer.from(Array.from({ length: rows * columns }, (_, p) => rgb(f, p)).flat())]);
      await writeFile(tmp.path(`color-${f}.ppm`), ppm);
      await dcmtk('opj_compress', ['-i', tmp.path(`color-${f}.ppm`), '-o', tmp.path(`color-${f}.j2k`), '-n', '2']); // few resolution levels: a small frame
      codestreams.push(new Uint8Array(await readFile(tmp.path(`color-${f}.j2k`))));
    }
    const labelledRgb = encapsulateFrames(color, JPEG_2000_LOSSLESS, codestreams);
    expect(Array.from((await decodeRun(labelledRgb)).frames.pixels)).toEqual(luma(color));
    const labelledRct = await modify(tmp.dir, labelledRgb, ['-m', '(0028,0004)=YBR_RCT']);
    expect(readHeader(labelledRct).photometricInterpretation).toBe('YBR_RCT');
    expect(Array.from((await decodeRun(labelledRct)).frames.pixels)).toEqual(luma(color));
  });

  it('decodes lossless HTJ2K color (the codec package\'s encoder) to the native run\'s luminance', async () => {
    await loadPixelCodecs(); // initializes the codecs' WebAssembly, which the encoder shares
    const { Context, NativeCodecs } = dcmjsCodecs;
    const codestreams = [0, 1, 2].map((f) => {
      const decodedBuffer = Uint8Array.from(Array.from({ length: rows * columns }, (_, p) => rgb(f, p)).flat());
      const context = new Context({ width: columns, height: rows, bitsAllocated: 8, bitsStored: 8, samplesPerPixel: 3, pixelRepresentation: 0, planarConfiguration: 0, photometricInterpretation: 'RGB', decodedBuffer });
      const encoded = NativeCodecs.encodeHtJpeg2000(context, { lossy: false }).getEncodedBuffer();
      if (encoded === undefined) throw new Error('no HTJ2K codestream');
      return Uint8Array.from(encoded);
    });
    expect(Array.from((await decodeRun(encapsulateFrames(color, HTJ2K_LOSSLESS, codestreams))).frames.pixels)).toEqual(luma(color));
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

  it('streams in batches, and goes in segments, each frame the luminance the whole run decodes to (by pixel and by plane)', async () => {
    const planar = await transform(tmp.dir, await transform(tmp.dir, color, 'dcmcjpeg', ['+e1']), 'dcmdjpeg', ['+pl']);
    const frameBytes = rows * columns * 3;
    for (const run of [color, planar]) {
      // Read as it arrives, in chunks of 500 bytes, one frame a batch.
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < run.length; at += 500) yield await Promise.resolve(run.subarray(at, at + 500));
      }
      const opened = await openFrameStream(chunks(), run.length, { batchBytes: frameBytes });
      if (opened.kind !== 'frames') throw new Error('a native color run is read as it arrives');
      expect(opened.frames).toMatchObject({ rows, columns, frameCount: 3, bitsStored: 8, photometric: 'MONOCHROME2' });
      const streamed: number[] = [];
      for await (const batch of opened.batches) {
        expect(batch.frameCount).toBe(1);
        streamed.push(...batch.pixels);
      }
      expect(streamed).toEqual(luma(color));
      // Sent while acquired: the header object, then segments of whole frames (two, then one).
      const segmented = readSegmentedHeader(run);
      expect(segmented.frameBytes).toBe(frameBytes);
      const pixels = run.subarray(run.length - 3 * frameBytes);
      const segments = [segmentFrames(segmented, pixels.subarray(0, 2 * frameBytes), 2), segmentFrames(segmented, pixels.subarray(2 * frameBytes), 1)];
      expect(segments.flatMap((s) => Array.from(s.pixels))).toEqual(luma(color));
      expect(segments[0]).toMatchObject({ rows, columns, frameCount: 2, bitsStored: 8, photometric: 'MONOCHROME2' });
      expect(expectArteriaError(() => segmentFrames(segmented, pixels.subarray(0, rows * columns), 1), 'SEGMENT_MISMATCH')).toMatch(/frames of 1440 bytes/);
    }
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
