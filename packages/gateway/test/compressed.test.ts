import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeidentificationKey, DeidentificationProfile, deidentify, deidentifyFile, type DeidentificationProfileInput } from '@arteria/gateway';
import { JPEG_LOSSLESS_SV1, MASK, RLE_LOSSLESS, compressedRun as compressedIn, pixelElement, exec, PHI } from '@arteria/testing';

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
});
