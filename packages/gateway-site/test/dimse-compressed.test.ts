import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { DicomIntake } from '@arteria/gateway-site';
import { decodeFrames, encapsulateFrames, JPEG_2000_LOSSLESS, JPEG_EXTENDED } from '@arteria/dicom';
import { JPEG_LOSSLESS_SV1, MASK, RLE_LOSSLESS, SERIES, STUDY, compressedRun as compressedIn, pixelElement, exec, memoryLogger, objectBytes, startServersWithResponder, type Responder, type Servers, PHI, phiRun } from '@arteria/testing';
import { gatewayOptions } from './support.js';

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

// Closes the responder, then the broker and store.
afterAll(async () => servers?.close());

const compressedRun = (name: string, tool: 'dcmcjpeg' | 'dcmcrle', seed: number, burnedIn = false): Promise<string> => compressedIn(servers.directory, name, tool, seed, burnedIn);

// Compressed instances go whole whatever streamWhileArriving says; these tests take the whole-file path directly.
describe('compressed runs by C-STORE (JPEG Lossless, RLE, JPEG Extended, JPEG 2000)', () => {
  it('accepts compressed runs by C-STORE and uploads them still compressed; a burned-in one is refused at the door', async () => {
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
      for (const [file, propose] of [[jpeg, '-xs'], [rle, '-xr']] as const) {
        await exec('storescu', ['-R', propose, '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);
      }
      // Masking cannot edit compressed pixels: the modality is told so, and nothing of it is kept.
      const outcome = await exec('storescu', ['-d', '-R', '-xr', '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), burned]).catch((err: { stdout: string; stderr: string }) => err);
      expect(`${outcome.stdout}${outcome.stderr}`).toMatch(/burned-in annotation in compressed pixels: refused \(site policy\)/);
      await vi.waitFor(() => expect(responder.requestsOf('compressed-1')).toHaveLength(2), { timeout: 10_000, interval: 20 });
      await intake.idle();
      expect(await readdir(`${folder}.failed`).catch(() => [])).toEqual([]);

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

  /**
   * Stores `file` by C-STORE (storescu proposing `propose` first) through a de-identifying
   * gateway, and checks that it went up as it came: same syntax, same fragments, no PHI.
   */
  async function storeAsItCame(device: string, file: string, propose: string, syntax: string): Promise<void> {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, device, { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, `incoming-${device}`);
    await mkdir(folder, { recursive: true });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 100, streamWhileArriving: false }, logger);
    await gateway.start();
    await intake.start();
    try {
      await exec('storescu', ['-R', propose, '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), file]);
      await vi.waitFor(() => expect(responder.requestsOf(device)).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await intake.idle();
      const [uploaded] = await Promise.all(responder.requestsOf(device).map((s) => objectBytes(servers.s3, s.request.inputs[0]?.uri ?? '')));
      expect(pixelElement(uploaded!).syntax).toBe(syntax);
      expect(pixelElement(uploaded!).raw.equals(pixelElement(await readFile(file)).raw)).toBe(true);
      for (const phi of PHI) expect(uploaded!.includes(phi), `${phi} left the site`).toBe(false);
    } finally {
      await intake.close();
      await gateway.close();
    }
  }

  it('accepts a lossy JPEG Extended run by C-STORE and uploads it as it came', async () => {
    const native = join(servers.directory, 'scu-extended.native.dcm');
    const file = join(servers.directory, 'scu-extended.dcm');
    await writeFile(native, phiRun({ seed: 8, studyInstanceUid: STUDY, seriesInstanceUid: `${SERIES}.8`, sopInstanceUid: `${SERIES}.8.1` }));
    await exec('dcmcjpeg', ['+ee', native, file]);
    // The modality proposes JPEG Extended first (-xx), as a system storing lossy 12-bit runs does.
    await storeAsItCame('compressed-extended', file, '-xx', JPEG_EXTENDED);
  });

  it('accepts a JPEG 2000 run by C-STORE and uploads it as it came', async () => {
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
    await storeAsItCame('compressed-j2k', file, '-xv', JPEG_2000_LOSSLESS);
  });
});
