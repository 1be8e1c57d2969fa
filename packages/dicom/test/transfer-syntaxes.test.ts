import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeFrames,
  decodeRun,
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  JPEG_BASELINE,
  JPEG_EXTENDED,
  JPEG_LOSSLESS,
  JPEG_LOSSLESS_SV1,
  JPEG_LS_LOSSLESS,
  RLE_LOSSLESS,
  synthesizeXaRun,
} from '@arteria/dicom';
import { expectArteriaError, modify, scratch, transform } from './helpers.js';

/** Runs made here, compressed by DCMTK, decoded by Arteria and compared with the originals. */
describe('transfer syntaxes', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  const run8 = synthesizeXaRun({ seed: 21, rows: 64, columns: 48, frames: 4, bitsStored: 8 });
  const run12 = synthesizeXaRun({ seed: 22, rows: 48, columns: 64, frames: 3, bitsStored: 12 });
  const run16 = synthesizeXaRun({ seed: 23, rows: 32, columns: 32, frames: 3, bitsStored: 16 });
  const original = (bytes: Uint8Array): Uint8Array | Uint16Array => decodeFrames(bytes).frames.pixels;

  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => tmp.cleanup());

  const lossless: [string, string, Buffer, string, string[]][] = [
    ['Implicit VR Little Endian', IMPLICIT_VR_LITTLE_ENDIAN, run12.bytes, 'dcmconv', ['+ti']],
    ['Explicit VR Little Endian', EXPLICIT_VR_LITTLE_ENDIAN, run12.bytes, 'dcmconv', ['+te']],
    ['JPEG Lossless SV1, 8-bit', JPEG_LOSSLESS_SV1, run8.bytes, 'dcmcjpeg', ['+e1']],
    ['JPEG Lossless SV1, 12-bit', JPEG_LOSSLESS_SV1, run12.bytes, 'dcmcjpeg', ['+e1']],
    ['JPEG Lossless SV1, 16-bit', JPEG_LOSSLESS_SV1, run16.bytes, 'dcmcjpeg', ['+e1']],
    ['JPEG Lossless process 14, selection value 6', JPEG_LOSSLESS, run12.bytes, 'dcmcjpeg', ['+el', '+sv', '6']],
    ['JPEG Lossless, 1 KB fragments with offset table', JPEG_LOSSLESS_SV1, run12.bytes, 'dcmcjpeg', ['+e1', '+fs', '1']],
    ['JPEG Lossless, 1 KB fragments, empty offset table', JPEG_LOSSLESS_SV1, run12.bytes, 'dcmcjpeg', ['+e1', '+fs', '1', '-ot']],
    ['RLE Lossless, 8-bit', RLE_LOSSLESS, run8.bytes, 'dcmcrle', []],
    ['RLE Lossless, 16-bit, empty offset table', RLE_LOSSLESS, run16.bytes, 'dcmcrle', ['-ot']],
    ['JPEG-LS Lossless', JPEG_LS_LOSSLESS, run12.bytes, 'dcmcjpls', []],
  ];

  it.each(lossless)('decodes %s exactly', async (_label, syntax, source, tool, flags) => {
    const encoded = await transform(tmp.dir, source, tool, flags);
    const { header, frames } = await decodeRun(encoded);
    expect(header.transferSyntaxUid).toBe(syntax);
    const expected = original(source);
    expect(frames.pixels.constructor).toBe(expected.constructor);
    expect(frames.pixels.length).toBe(expected.length);
    expect(Buffer.from(frames.pixels.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it('decodes JPEG Baseline 8-bit as DCMTK does, and close to the original', async () => {
    // +sr keeps the pixel range as is (DCMTK's default stretches min..max to 0..255).
    const encoded = await transform(tmp.dir, run8.bytes, 'dcmcjpeg', ['+eb', '+sr', '+q', '90']);
    const { header, frames } = await decodeRun(encoded);
    expect(header.transferSyntaxUid).toBe(JPEG_BASELINE);
    const byDcmtk = original(await transform(tmp.dir, encoded, 'dcmdjpeg', []));
    expect(Buffer.from(frames.pixels.buffer).equals(Buffer.from(byDcmtk.buffer))).toBe(true);
    const expected = original(run8.bytes);
    expect(frames.pixels.length).toBe(expected.length);
    let sumAbs = 0;
    for (let i = 0; i < expected.length; i++) sumAbs += Math.abs((frames.pixels[i] ?? 0) - (expected[i] ?? 0));
    // Lossy: a few grey levels on 0..255 noisy fluoroscopy; a wrong frame order or geometry is far above.
    expect(sumAbs / expected.length).toBeLessThan(6);
  });

  // Lossy 8-bit (Process 2) and 12-bit (Process 4) JPEG, as some angiography systems store runs.
  it.each([
    ['8-bit', run8.bytes],
    ['12-bit', run12.bytes],
  ])('decodes JPEG Extended %s exactly as DCMTK does, and close to the original', async (label, source) => {
    const encoded = await transform(tmp.dir, source, 'dcmcjpeg', ['+ee', '+sr', '+q', '90']);
    const { header, frames } = await decodeRun(encoded);
    expect(header.transferSyntaxUid).toBe(JPEG_EXTENDED);
    const byDcmtk = original(await transform(tmp.dir, encoded, 'dcmdjpeg', []));
    expect(frames.pixels.constructor).toBe(byDcmtk.constructor);
    expect(Buffer.from(frames.pixels.buffer).equals(Buffer.from(byDcmtk.buffer))).toBe(true);
    const expected = original(source);
    let sumAbs = 0;
    for (let i = 0; i < expected.length; i++) sumAbs += Math.abs((frames.pixels[i] ?? 0) - (expected[i] ?? 0));
    // A few grey levels of the range (256 or 4096); a wrong frame order, geometry or bit depth is far above.
    expect(sumAbs / expected.length / (label === '8-bit' ? 256 : 4096)).toBeLessThan(0.025);
  });

  it('refuses a JPEG frame whose samples are wider than the run declares', async () => {
    const encoded = await transform(tmp.dir, run12.bytes, 'dcmcjpeg', ['+ee']);
    // BitsAllocated 16 -> 8 (same length): the 12-bit codestream would decode to twice the bytes a frame holds.
    const narrowed = await modify(tmp.dir, encoded, ['-m', '(0028,0100)=8', '-m', '(0028,0101)=8', '-m', '(0028,0102)=7']);
    await expect(decodeRun(narrowed)).rejects.toMatchObject({ code: 'INVALID_DICOM', message: expect.stringContaining('12-bit samples; BitsAllocated is 8') as unknown });
  });

  it('needs the codecs for compressed frames when decoding synchronously', async () => {
    const encoded = await transform(tmp.dir, run8.bytes, 'dcmcrle', []);
    expectArteriaError(() => decodeFrames(encoded), 'INTERNAL');
  });

  it('rejects syntaxes it does not decode, naming them', async () => {
    const deflated = await transform(tmp.dir, run8.bytes, 'dcmconv', ['+td']);
    await expect(decodeRun(deflated)).rejects.toMatchObject({ code: 'UNSUPPORTED_TRANSFER_SYNTAX', message: expect.stringContaining('1.2.840.10008.1.2.1.99 (Deflated Explicit VR Little Endian)') as unknown });
    const bigEndian = await transform(tmp.dir, run12.bytes, 'dcmconv', ['+tb']);
    await expect(decodeRun(bigEndian)).rejects.toMatchObject({ code: 'UNSUPPORTED_TRANSFER_SYNTAX', message: expect.stringContaining('Explicit VR Big Endian') as unknown });
    // Retired JPEG Extended Process 3 & 5: a syntax no codec here reads, though its frames would look like JPEG.
    const retired = relabel(await transform(tmp.dir, run8.bytes, 'dcmcjpeg', ['+e1']), JPEG_LOSSLESS_SV1, '1.2.840.10008.1.2.4.52');
    const message = expectArteriaError(() => decodeFrames(retired), 'UNSUPPORTED_TRANSFER_SYNTAX');
    expect(message).toContain('transfer syntax 1.2.840.10008.1.2.4.52 is not supported');
  });

  it('reports a corrupt compressed frame as INVALID_DICOM', async () => {
    const encoded = await transform(tmp.dir, run8.bytes, 'dcmcjpeg', ['+e1']);
    // Overwrite the middle of the pixel data (inside the first frames' entropy-coded data).
    const broken = Buffer.from(encoded);
    broken.fill(0xff, broken.length - 2000, broken.length - 1200);
    await expect(decodeRun(broken)).rejects.toMatchObject({ code: 'INVALID_DICOM' });
  });
});

/** Rewrites the transfer syntax UID in the meta header (same length, so nothing else moves). */
function relabel(bytes: Buffer, from: string, to: string): Buffer {
  expect(to.length).toBe(from.length);
  const out = Buffer.from(bytes);
  const at = out.indexOf(from, 132, 'latin1');
  expect(at).toBeGreaterThan(0);
  out.write(to, at, 'latin1');
  return out;
}
