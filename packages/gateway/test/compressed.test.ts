import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeidentificationKey, DeidentificationProfile, DicomIntake, Gateway, deidentify, deidentifyFile, type DeidentificationProfileInput } from '@arteria/gateway';
import { decodeFrames, encapsulateFrames, JPEG_2000_LOSSLESS } from '@arteria/dicom';
import { exec } from './dicom-tools.js';
import { gatewayOptions, memoryLogger, objectBytes, startServersWithResponder, type Responder, type Servers } from './helpers.js';
import { PHI, phiRun } from './phi.js';

const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
const RLE_LOSSLESS = '1.2.840.10008.1.2.5';
const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.88';
const SERIES = `${STUDY}.2`;
const key = new DeidentificationKey(Buffer.alloc(32, 9));
const profile = (input: DeidentificationProfileInput = {}): DeidentificationProfile => DeidentificationProfile.parse(input);
const MASK: DeidentificationProfileInput = { burnedInAnnotation: { policy: 'mask', regions: [{ x: 0, y: 0, width: 4, height: 4 }] } };

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

// Closes the responder, then the broker and store.
afterAll(async () => servers?.close());

/** A PHI-laden run compressed by DCMTK (dcmcjpeg: JPEG Lossless SV1; dcmcrle: RLE Lossless). */
async function compressedRun(name: string, tool: 'dcmcjpeg' | 'dcmcrle', seed: number, burnedIn = false): Promise<string> {
  const native = join(servers.directory, `${name}.native.dcm`);
  const file = join(servers.directory, `${name}.dcm`);
  await writeFile(native, phiRun({ seed, studyInstanceUid: STUDY, seriesInstanceUid: `${SERIES}.${seed}`, sopInstanceUid: `${SERIES}.${seed}.1`, burnedIn }));
  await exec(tool, [native, file]);
  return file;
}

/** The transfer syntax and the raw Pixel Data element (offset table and fragments) of a Part 10 object. */
function pixelElement(bytes: Buffer): { syntax: string | undefined; fragments: number; raw: Buffer } {
  const ds = dicomParser.parseDicom(bytes);
  const element = ds.elements.x7fe00010;
  if (element === undefined) throw new Error('no pixel data');
  // Explicit VR: tag, VR, reserved, undefined length precede the items.
  return { syntax: ds.string('x00020010'), fragments: element.fragments?.length ?? 0, raw: bytes.subarray(element.dataOffset - 12) };
}

// Compressed instances go whole whatever streamWhileArriving says; these tests take the whole-file path directly.
describe('compressed runs (JPEG Lossless, RLE)', () => {
  for (const [tool, syntax] of [['dcmcjpeg', JPEG_LOSSLESS_SV1], ['dcmcrle', RLE_LOSSLESS]] as const) {
    it(`${tool}: the header is de-identified, the fragments are copied untouched, in memory and streamed`, async () => {
      const file = await compressedRun(`deid-${tool}`, tool, tool === 'dcmcjpeg' ? 1 : 2);
      const original = await readFile(file);
      const before = pixelElement(original);
      expect(before.syntax).toBe(syntax);
      expect(before.fragments).toBeGreaterThanOrEqual(4); // one per frame at least

      const inMemory = deidentify(original, profile(), key);
      const streamedPath = join(servers.directory, `deid-${tool}.out.dcm`);
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
      const [a, b] = [join(servers.directory, `${tool}-a.dcm`), join(servers.directory, `${tool}-b.dcm`)];
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
    await expect(deidentifyFile(file, join(servers.directory, 'burned-out.dcm'), profile(MASK), key)).rejects.toMatchObject({ code: 'DEIDENTIFICATION_REFUSED', message: expect.stringMatching(reason) as unknown });
    await expect(deidentifyFile(file, join(servers.directory, 'burned-out-2.dcm'), profile(), key)).rejects.toMatchObject({ code: 'DEIDENTIFICATION_REFUSED' });
    expect(await readdir(servers.directory)).not.toContain('burned-out.dcm');
  });

  it('accepts compressed runs by C-STORE and uploads them still compressed; a burned-in one stays on-site', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'compressed-1', { deidentification: { enabled: true, profile: MASK } }), { logger });
    const folder = join(servers.directory, 'incoming-compressed');
    await mkdir(folder, { recursive: true });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 100, streamWhileArriving: false }, logger);
    await gateway.start();
    await intake.start();
    try {
      const jpeg = await compressedRun('scu-jpeg', 'dcmcjpeg', 4);
      const rle = await compressedRun('scu-rle', 'dcmcrle', 5);
      const burned = await compressedRun('scu-burned', 'dcmcrle', 6, true);
      // The modality proposes its compressed syntax (and the uncompressed ones); the receiver takes the data as it is.
      for (const [file, propose] of [[jpeg, '-xs'], [rle, '-xr'], [burned, '-xr']] as const) {
        await exec('storescu', ['-R', propose, '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);
      }
      await vi.waitFor(() => expect(responder.requestsOf('compressed-1')).toHaveLength(2), { timeout: 10_000, interval: 20 });
      await vi.waitFor(async () => expect(await readdir(`${folder}.failed`).catch(() => [])).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await intake.idle();

      const uploaded = await Promise.all(responder.requestsOf('compressed-1').map((s) => objectBytes(servers.s3, s.request.inputs[0]?.uri ?? '')));
      const syntaxes = uploaded.map((bytes) => pixelElement(bytes).syntax).sort();
      expect(syntaxes).toEqual([JPEG_LOSSLESS_SV1, RLE_LOSSLESS].sort());
      for (const [bytes, source] of uploaded.map((b) => [b, pixelElement(b).syntax === RLE_LOSSLESS ? rle : jpeg] as const)) {
        expect(pixelElement(bytes).raw.equals(pixelElement(await readFile(source)).raw)).toBe(true);
        for (const phi of PHI) expect(bytes.includes(phi), `${phi} left the site`).toBe(false);
      }
      const refused = logger.lines.find((l) => l.fields?.code === 'DEIDENTIFICATION_REFUSED');
      expect(String(refused?.fields?.error)).toMatch(/compressed pixels.*RLE Lossless/);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('accepts a JPEG 2000 run by C-STORE and uploads it as it came', async () => {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, 'compressed-j2k', { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, 'incoming-j2k');
    await mkdir(folder, { recursive: true });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 100, streamWhileArriving: false }, logger);
    await gateway.start();
    await intake.start();
    try {
      // Each frame compressed by OpenJPEG (lossless), wrapped as encapsulated Pixel Data.
      const native = phiRun({ seed: 7, studyInstanceUid: STUDY, seriesInstanceUid: `${SERIES}.7`, sopInstanceUid: `${SERIES}.7.1` });
      const { frames } = decodeFrames(native);
      const plane = frames.rows * frames.columns;
      const codestreams: Uint8Array[] = [];
      for (let f = 0; f < frames.frameCount; f++) {
        const pgm = join(servers.directory, `j2k-${f}.pgm`);
        const j2k = join(servers.directory, `j2k-${f}.j2k`);
        await writeFile(pgm, Buffer.concat([Buffer.from(`P5\n${frames.columns} ${frames.rows}\n255\n`), Buffer.from(frames.pixels.subarray(f * plane, (f + 1) * plane))]));
        await exec('opj_compress', ['-i', pgm, '-o', j2k, '-n', '3']);
        codestreams.push(await readFile(j2k));
      }
      const file = join(servers.directory, 'scu-j2k.dcm');
      await writeFile(file, encapsulateFrames(native, JPEG_2000_LOSSLESS, codestreams));
      // The modality proposes JPEG 2000 lossless first (-xv); the receiver takes the data as it is.
      await exec('storescu', ['-R', '-xv', '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);
      await vi.waitFor(() => expect(responder.requestsOf('compressed-j2k')).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await intake.idle();
      const [uploaded] = await Promise.all(responder.requestsOf('compressed-j2k').map((s) => objectBytes(servers.s3, s.request.inputs[0]?.uri ?? '')));
      expect(pixelElement(uploaded!).syntax).toBe(JPEG_2000_LOSSLESS);
      expect(pixelElement(uploaded!).raw.equals(pixelElement(await readFile(file)).raw)).toBe(true);
      for (const phi of PHI) expect(uploaded!.includes(phi), `${phi} left the site`).toBe(false);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });
});
