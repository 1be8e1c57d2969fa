import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeidentificationKey, DeidentificationProfile, deidentify, deidentifyFile, type DeidentificationProfileInput } from '@arteria/gateway';
import { decodeFrames, decodeRun, encapsulateFrames, newerVrElements } from '@arteria/dicom';
import { JPEG_LOSSLESS_SV1, MASK, RLE_LOSSLESS, compressedRun as compressedIn, pixelElement, exec, PHI, phiRun } from '@arteria/testing';

const key = new DeidentificationKey(Buffer.alloc(32, 9));
const profile = (input: DeidentificationProfileInput = {}): DeidentificationProfile => DeidentificationProfile.parse(input);

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'arteria-compressed-'));
});

afterAll(async () => rm(directory, { recursive: true, force: true }));

const compressedRun = (name: string, tool: 'dcmcjpeg' | 'dcmcrle', seed: number, burnedIn = false): Promise<string> => compressedIn(directory, name, tool, seed, burnedIn);

describe('compressed runs (JPEG Lossless, RLE)', () => {
  for (const [tool, syntax] of [['dcmcjpeg', JPEG_LOSSLESS_SV1], ['dcmcrle', RLE_LOSSLESS]] as const) {
    it(`${tool}: the header is de-identified, the fragments are copied untouched, in memory and streamed`, async () => {
      const file = await compressedRun(`deid-${tool}`, tool, tool === 'dcmcjpeg' ? 1 : 2);
      const original = await readFile(file);
      const before = pixelElement(original);
      expect(before.syntax).toBe(syntax);
      expect(before.fragments).toBeGreaterThanOrEqual(4); // one per frame at least

      const inMemory = deidentify(original, profile(), key);
      const streamedPath = join(directory, `deid-${tool}.out.dcm`);
      const streamed = await deidentifyFile(file, streamedPath, profile(), key);
      const streamedBytes = await readFile(streamedPath);
      expect(streamedBytes.equals(inMemory.bytes)).toBe(true);
      expect(streamed.deidentified).toEqual(inMemory.deidentified);

      const after = pixelElement(inMemory.bytes);
      expect(after.syntax).toBe(syntax);
      expect(after.raw.equals(before.raw)).toBe(true);
      const header = inMemory.bytes.subarray(0, inMemory.bytes.length - after.raw.length);
      for (const phi of PHI) expect(header.includes(phi), `${phi} left the site`).toBe(false);
      expect(dicomParser.parseDicom(inMemory.bytes).string('x00120062')).toBe('YES');

      // DCMTK decodes the de-identified object to the same pixels as the original.
      const decoder = tool === 'dcmcjpeg' ? 'dcmdjpeg' : 'dcmdrle';
      const [a, b] = [join(directory, `${tool}-a.dcm`), join(directory, `${tool}-b.dcm`)];
      await exec(decoder, [file, a]);
      await exec(decoder, [streamedPath, b]);
      const pixels = async (path: string): Promise<Buffer> => {
        const bytes = await readFile(path);
        const element = dicomParser.parseDicom(bytes).elements.x7fe00010;
        return bytes.subarray(element?.dataOffset ?? 0, (element?.dataOffset ?? 0) + (element?.length ?? 0));
      };
      expect((await pixels(b)).equals(await pixels(a))).toBe(true);
    });
  }

  it('refuses compressed runs with burned-in annotation even where the site masks, saying why', async () => {
    const file = await compressedRun('burned-jpeg', 'dcmcjpeg', 3, true);
    const reason = /burned-in annotation.*compressed pixels.*JPEG Lossless.*refused/;
    expect(() => deidentify(readFileSync(file), profile(MASK), key)).toThrow(reason);
    await expect(deidentifyFile(file, join(directory, 'burned-out.dcm'), profile(MASK), key)).rejects.toMatchObject({ code: 'DEIDENTIFICATION_REFUSED', message: expect.stringMatching(reason) as unknown });
    await expect(deidentifyFile(file, join(directory, 'burned-out-2.dcm'), profile(), key)).rejects.toMatchObject({ code: 'DEIDENTIFICATION_REFUSED' });
    expect(await readdir(directory)).not.toContain('burned-out.dcm');
  });
  it('keeps an Extended Offset Table (OV) through de-identification, byte for byte, and the platform decodes by it', async () => {
    // JPEG Lossless frames from DCMTK, re-encapsulated in 50-byte fragments behind an empty
    // Basic Offset Table and an Extended Offset Table, as large runs are written.
    const native = phiRun({ seed: 11, studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.11', seriesInstanceUid: '1.2.826.0.1.3680043.8.1055.1.11.2', sopInstanceUid: '1.2.826.0.1.3680043.8.1055.1.11.2.1' });
    const jpegFile = join(directory, 'eot-source.dcm');
    await writeFile(join(directory, 'eot-native.dcm'), native);
    await exec('dcmcjpeg', ['+e1', join(directory, 'eot-native.dcm'), jpegFile]);
    const jpeg = await readFile(jpegFile);
    const ds = dicomParser.parseDicom(jpeg);
    const element = ds.elements.x7fe00010!;
    const frames = (element.basicOffsetTable ?? []).map((_, f) => new Uint8Array(dicomParser.readEncapsulatedImageFrame(ds, element, f)));
    expect(frames).toHaveLength(4);
    const original = encapsulateFrames(native, JPEG_LOSSLESS_SV1, frames, { offsets: 'extended', fragmentBytes: 50 });
    expect(pixelElement(original).fragments).toBeGreaterThan(8);
    const tables = (bytes: Uint8Array): { tag: string; vr: string; value: string }[] =>
      newerVrElements(bytes).map((e) => ({ tag: e.tag, vr: e.vr, value: Buffer.from(bytes.subarray(e.offset + 12, e.offset + 12 + Buffer.from(bytes).readUInt32LE(e.offset + 8))).toString('hex') }));
    expect(tables(original).map((t) => `${t.tag} ${t.vr}`)).toEqual(['7FE00001 OV', '7FE00002 OV']);

    const out = deidentify(original, profile(), key).bytes;
    expect(tables(out)).toEqual(tables(original));
    expect(pixelElement(out).raw.equals(pixelElement(original).raw)).toBe(true);
    for (const phi of PHI) expect(out.includes(phi), `${phi} left the site`).toBe(false);
    // DCMTK reads the table as what it is.
    const outFile = join(directory, 'eot-out.dcm');
    await writeFile(outFile, out);
    expect((await exec('dcmdump', ['+P', '7fe0,0001', outFile])).stdout).toMatch(/\(7fe0,0001\) OV /);
    // The frames decode by the table to what the uncompressed run holds.
    const decoded = await decodeRun(out);
    expect(Buffer.from(decoded.frames.pixels.buffer).equals(Buffer.from(decodeFrames(native).frames.pixels.buffer))).toBe(true);
  });
});
