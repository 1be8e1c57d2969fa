import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { decodeRun, inflateBounded, readHeader, synthesizeXaRun } from '@arteria/dicom';
import { deflateBomb, nativeRun, nestedSequences } from '@arteria/testing';
import { scratch, transform } from './helpers.js';

const codeOf = async (work: () => unknown): Promise<string | undefined> => {
  try {
    await work();
  } catch (err) {
    expect(err).toBeInstanceOf(ArteriaError);
    return (err as ArteriaError).code;
  }
  return undefined;
};

/** Files made to hurt the reader: each is refused with a typed error, nothing else. */
describe('hostile DICOM input', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => tmp.cleanup());

  it('stops inflating a deflate bomb (4 MB that inflates to 3 GiB) at the limit, with INPUT_TOO_LARGE', async () => {
    const bomb = await deflateBomb(3 * 1024 ** 3);
    expect(bomb.length).toBeLessThan(5 * 1024 * 1024);
    expect(await codeOf(() => readHeader(bomb))).toBe('INPUT_TOO_LARGE');
    expect(await codeOf(() => decodeRun(bomb))).toBe('INPUT_TOO_LARGE');
    expect(() => inflateBounded(bomb.subarray(bomb.length - 4096), 1024)).toThrow(ArteriaError);
  });

  it('refuses absurd geometry, huge declared lengths, truncated pixels and deep nesting as INVALID_DICOM', async () => {
    expect(await codeOf(() => decodeRun(nativeRun({ rows: 65535, columns: 65535, frames: 2 ** 31 - 1 }, 0xfffffff0, 64)))).toBe('INVALID_DICOM');
    expect(await codeOf(() => decodeRun(nativeRun({ rows: 64, columns: 64, frames: 10 }, 64 * 64 * 10, 1000)))).toBe('INVALID_DICOM');
    expect(await codeOf(() => decodeRun(nestedSequences(50_000)))).toBe('INVALID_DICOM');
  });

  it('refuses a compressed run whose frames would decode beyond the limit before decoding any', async () => {
    const run = synthesizeXaRun({ seed: 5, rows: 64, columns: 64, frames: 4, bitsStored: 8 });
    const jpeg = await transform(tmp.dir, run.bytes, 'dcmcjpeg', ['+e1']);
    expect(await codeOf(() => decodeRun(jpeg, { maxDecodedBytes: 64 * 64 * 4 - 1 }))).toBe('INPUT_TOO_LARGE');
    expect(await codeOf(() => decodeRun(jpeg, { maxDecodedBytes: 64 * 64 * 4 }))).toBeUndefined();
  });

  it('refuses a JPEG frame whose own header claims more pixels than Rows x Columns, before the codec allocates', async () => {
    const run = synthesizeXaRun({ seed: 6, rows: 64, columns: 64, frames: 2, bitsStored: 8 });
    const jpeg = await transform(tmp.dir, run.bytes, 'dcmcjpeg', ['+e1']);
    // Every SOF3 (lossless) segment now says 65535 x 65535.
    let patched = 0;
    for (let i = jpeg.indexOf(Buffer.from([0xff, 0xd8])); i >= 0 && i + 9 < jpeg.length; i++) {
      if (jpeg[i] === 0xff && jpeg[i + 1] === 0xc3) {
        jpeg.writeUInt16BE(0xffff, i + 5);
        jpeg.writeUInt16BE(0xffff, i + 7);
        patched += 1;
      }
    }
    expect(patched).toBe(2);
    await expect(decodeRun(jpeg)).rejects.toMatchObject({ code: 'INVALID_DICOM', message: expect.stringContaining('encoded as 65535 x 65535') as unknown });
  });
});
