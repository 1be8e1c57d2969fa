import { readFile, writeFile } from 'node:fs/promises';
import dcmjsCodecs from 'dcmjs-codecs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, decodeRun, encapsulateFrames as encapsulate, HTJ2K, HTJ2K_LOSSLESS, JPEG_2000, JPEG_2000_LOSSLESS, loadPixelCodecs, synthesizeXaRun } from '@arteria/dicom';
import { dcmtk, scratch } from './helpers.js';

type Frames = Uint8Array | Uint16Array;

/** A frame as a binary PGM (16-bit samples big-endian, as the format says). */
function pgm(frame: Frames, rows: number, columns: number, maxValue: number): Buffer {
  const header = Buffer.from(`P5\n${columns} ${rows}\n${maxValue}\n`, 'latin1');
  if (frame instanceof Uint8Array) return Buffer.concat([header, Buffer.from(frame)]);
  const body = Buffer.alloc(frame.length * 2);
  frame.forEach((v, i) => body.writeUInt16BE(v, i * 2));
  return Buffer.concat([header, body]);
}

/** Samples of a binary PGM written by opj_decompress. */
function readPgm(bytes: Buffer): number[] {
  let at = 0;
  const fields: string[] = [];
  while (fields.length < 4) {
    while (/\s/.test(String.fromCharCode(bytes[at]!))) at++;
    if (bytes[at] === 0x23) {
      // A comment (OpenJPEG writes its version) runs to the end of the line.
      while (bytes[at] !== 0x0a) at++;
      continue;
    }
    let token = '';
    while (!/\s/.test(String.fromCharCode(bytes[at]!))) token += String.fromCharCode(bytes[at++]!);
    fields.push(token);
  }
  at++;
  const wide = Number(fields[3]) > 255;
  const count = Number(fields[1]) * Number(fields[2]);
  return Array.from({ length: count }, (_, i) => (wide ? bytes.readUInt16BE(at + 2 * i) : bytes[at + i]!));
}

/** JPEG 2000 and HTJ2K runs: encoded by OpenJPEG or by the codec package, decoded by Arteria, compared with OpenJPEG's decoder and the originals. */
describe('JPEG 2000 and High-Throughput JPEG 2000', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  const run8 = synthesizeXaRun({ seed: 41, rows: 48, columns: 64, frames: 3, bitsStored: 8 });
  const run12 = synthesizeXaRun({ seed: 42, rows: 64, columns: 48, frames: 3, bitsStored: 12 });
  const run16 = synthesizeXaRun({ seed: 43, rows: 32, columns: 32, frames: 2, bitsStored: 16 });
  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => tmp.cleanup());

  const framesOf = (bytes: Buffer): { frames: Frames[]; rows: number; columns: number; bitsStored: number } => {
    const { frames } = decodeFrames(bytes);
    const plane = frames.rows * frames.columns;
    return { frames: Array.from({ length: frames.frameCount }, (_, f) => frames.pixels.subarray(f * plane, (f + 1) * plane)), rows: frames.rows, columns: frames.columns, bitsStored: frames.bitsStored };
  };

  /** Each frame compressed by opj_compress with `flags` into a raw codestream. */
  async function openJpegEncode(name: string, source: Buffer, flags: string[]): Promise<Uint8Array[]> {
    const { frames, rows, columns, bitsStored } = framesOf(source);
    return Promise.all(
      frames.map(async (frame, f) => {
        const input = tmp.path(`${name}-${f}.pgm`);
        const output = tmp.path(`${name}-${f}.j2k`);
        await writeFile(input, pgm(frame, rows, columns, 2 ** bitsStored - 1));
        await dcmtk('opj_compress', ['-i', input, '-o', output, ...flags]);
        return new Uint8Array(await readFile(output));
      }),
    );
  }

  /** What OpenJPEG's own decoder makes of each codestream. */
  async function openJpegDecode(name: string, codestreams: readonly Uint8Array[]): Promise<number[]> {
    const samples: number[] = [];
    for (const [f, codestream] of codestreams.entries()) {
      const input = tmp.path(`${name}-${f}.ref.j2k`);
      const output = tmp.path(`${name}-${f}.ref.pgm`);
      await writeFile(input, codestream);
      await dcmtk('opj_decompress', ['-i', input, '-o', output]);
      samples.push(...readPgm(await readFile(output)));
    }
    return samples;
  }

  it.each([
    ['8-bit', run8],
    ['12-bit', run12],
    ['16-bit', run16],
  ])('decodes lossless JPEG 2000 (OpenJPEG, %s) exactly', async (label, run) => {
    const codestreams = await openJpegEncode(`lossless-${label}`, run.bytes, []);
    const { header, frames } = await decodeRun(encapsulate(run.bytes, JPEG_2000_LOSSLESS, codestreams));
    expect(header.transferSyntaxUid).toBe(JPEG_2000_LOSSLESS);
    const original = decodeFrames(run.bytes).frames.pixels;
    expect(frames.pixels.constructor).toBe(original.constructor);
    expect(Buffer.from(frames.pixels.buffer).equals(Buffer.from(original.buffer))).toBe(true);
  });

  it('decodes lossy JPEG 2000 exactly as OpenJPEG does', async () => {
    const codestreams = await openJpegEncode('lossy', run12.bytes, ['-r', '12', '-I']);
    const { frames } = await decodeRun(encapsulate(run12.bytes, JPEG_2000, codestreams));
    expect([...frames.pixels]).toEqual(await openJpegDecode('lossy', codestreams));
    const original = decodeFrames(run12.bytes).frames.pixels;
    expect([...frames.pixels]).not.toEqual([...original]);
  });

  it.each([
    ['lossless', HTJ2K_LOSSLESS, false],
    ['lossy', HTJ2K, true],
  ] as const)('decodes %s HTJ2K as OpenJPEG does', async (label, syntax, lossy) => {
    await loadPixelCodecs();
    const { NativeCodecs, Context } = dcmjsCodecs;
    const { frames: source, rows, columns } = framesOf(run12.bytes);
    const codestreams = source.map((frame) => {
      const context = new Context({ width: columns, height: rows, bitsAllocated: 16, bitsStored: 12, samplesPerPixel: 1, pixelRepresentation: 0, planarConfiguration: 0, photometricInterpretation: 'MONOCHROME2', decodedBuffer: new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength) });
      const encoded = NativeCodecs.encodeHtJpeg2000(context, { lossy }).getEncodedBuffer();
      if (encoded === undefined) throw new Error('no HTJ2K codestream');
      return Uint8Array.from(encoded);
    });
    const { header, frames } = await decodeRun(encapsulate(run12.bytes, syntax, codestreams));
    expect(header.transferSyntaxUid).toBe(syntax);
    const reference = await openJpegDecode(`ht-${label}`, codestreams);
    const original = decodeFrames(run12.bytes).frames.pixels;
    if (!lossy) {
      expect([...frames.pixels]).toEqual(reference);
      expect(Buffer.from(frames.pixels.buffer).equals(Buffer.from(original.buffer))).toBe(true);
      return;
    }
    // Lossy HTJ2K uses the irreversible (floating-point) wavelet: two decoders may round a sample differently by one level, no more.
    let largest = 0;
    let error = 0;
    frames.pixels.forEach((v, i) => {
      largest = Math.max(largest, Math.abs(v - reference[i]!));
      error += Math.abs(v - original[i]!);
    });
    expect(largest).toBeLessThanOrEqual(1);
    expect(error / original.length).toBeLessThan(40);
  });

  it('reports a corrupt JPEG 2000 frame as INVALID_DICOM', async () => {
    const codestreams = await openJpegEncode('corrupt', run12.bytes, []);
    const broken = codestreams.map((c, i) => (i === 1 ? c.slice(0, 40) : c));
    await expect(decodeRun(encapsulate(run12.bytes, JPEG_2000_LOSSLESS, broken))).rejects.toMatchObject({ code: 'INVALID_DICOM' });
  });
  // Frames split into several fragments, as large runs are written: found by the Basic Offset
  // Table, by the Extended Offset Table (OV, 64-bit offsets) or, with neither, by each
  // codestream's start marker.
  it.each([
    ['no offset table', 'empty'],
    ['a Basic Offset Table', 'basic'],
    ['an Extended Offset Table', 'extended'],
  ] as const)('decodes frames split into fragments, found by %s', async (_label, offsets) => {
    const codestreams = await openJpegEncode(`fragments-${offsets}`, run12.bytes, []);
    const bytes = encapsulate(run12.bytes, JPEG_2000_LOSSLESS, codestreams, { offsets, fragmentBytes: 100 });
    const copy = Buffer.from(bytes);
    const { frames } = await decodeRun(bytes);
    expect(Buffer.from(frames.pixels.buffer).equals(Buffer.from(decodeFrames(run12.bytes).frames.pixels.buffer))).toBe(true);
    expect(bytes.equals(copy)).toBe(true); // read, never changed
  });

  it('refuses offset tables that do not fit the fragments', async () => {
    const codestreams = await openJpegEncode('bad-tables', run12.bytes, []);
    const extended = encapsulate(run12.bytes, JPEG_2000_LOSSLESS, codestreams, { offsets: 'extended', fragmentBytes: 100 });
    // The second frame's 64-bit offset moved by 2 bytes: no fragment starts there.
    const table = extended.indexOf(Buffer.from([0xe0, 0x7f, 0x01, 0x00, 0x4f, 0x56]));
    const moved = Buffer.from(extended);
    moved.writeBigUInt64LE(moved.readBigUInt64LE(table + 12 + 8) + 2n, table + 12 + 8);
    await expect(decodeRun(moved)).rejects.toMatchObject({ code: 'INVALID_DICOM', message: expect.stringContaining('Extended Offset Table puts frame 2') as unknown });
    // Markers alone must find exactly NumberOfFrames frames: a codestream without its start is not one.
    const headless = codestreams.map((c, i) => (i === 1 ? c.subarray(4) : c));
    await expect(decodeRun(encapsulate(run12.bytes, JPEG_2000_LOSSLESS, headless, { fragmentBytes: 100 }))).rejects.toMatchObject({ code: 'INVALID_DICOM', message: expect.stringContaining('found 2 jpeg2000 frame starts') as unknown });
  });
});
