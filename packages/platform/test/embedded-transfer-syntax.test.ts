import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, synthesizeXaRun } from '@arteria/dicom';
import { encodePayload } from '@arteria/protocol';
import type { S3Client } from '@aws-sdk/client-s3';
import { writeColorRun, type TestDevice } from '@arteria/testing';
import { startPlatformWithDevice } from './support/platform.js';

const exec = promisify(execFile);

/** Runs as modalities send them, compressed by DCMTK, through the whole platform. */
describe('embedded platform: transfer syntaxes', () => {
  let s3: S3Client;
  let device: TestDevice;
  let dir: string;
  let cleanup: () => Promise<void>;
  const bucket = 'arteria-runs';
  const run = synthesizeXaRun({ seed: 31, rows: 64, columns: 64, frames: 6, bitsStored: 12 });
  let uid = 0;

  const dcmtk = async (tool: string, flags: string[]): Promise<Buffer> => {
    const input = path.join(dir, `in-${++uid}.dcm`);
    await writeFile(input, run.bytes);
    await exec(tool, [...flags, input, `${input}.out`]);
    return readFile(`${input}.out`);
  };

  const send = async (bytes: Uint8Array): Promise<Awaited<ReturnType<TestDevice['next']>>> => {
    const request = await device.prepare(s3, bucket, bytes, 'echo@^1', `1.2.826.0.1.3680043.10.9.${++uid}`);
    await device.publishRaw(encodePayload(request));
    return device.next((r) => r.requestId === request.id);
  };

  beforeAll(async () => {
    ({ dir, s3, device, close: cleanup } = await startPlatformWithDevice('syntax', (tmp) => ({ dataDir: path.join(tmp, 'data') })));
  });
  afterAll(async () => cleanup());

  it('gives the algorithm the same frames from RLE and JPEG Lossless as from the uncompressed run', async () => {
    const native = await send(run.bytes);
    expect(native.status).toBe('ok');
    for (const [tool, flags] of [['dcmcrle', []], ['dcmcjpeg', ['+e1', '+fs', '2']]] as const) {
      const result = await send(await dcmtk(tool, [...flags]));
      expect(result.status, JSON.stringify(result.error)).toBe('ok');
      expect(result.output).toEqual(native.output);
    }
  });

  it('gives the algorithm of a lossy 12-bit JPEG Extended run the frames DCMTK decodes from it', async () => {
    const lossy = await dcmtk('dcmcjpeg', ['+ee', '+q', '85']);
    const decodedByDcmtk = path.join(dir, `dcmdjpeg-${++uid}.dcm`);
    await writeFile(`${decodedByDcmtk}.in`, lossy);
    await exec('dcmdjpeg', [`${decodedByDcmtk}.in`, decodedByDcmtk]);
    const result = await send(lossy);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    const reference = await send(await readFile(decodedByDcmtk));
    expect(reference.status).toBe('ok');
    expect(result.output).toEqual(reference.output);
  });

  it('answers a run in a syntax it cannot decode with a typed result naming the syntax', async () => {
    const result = await send(await dcmtk('dcmconv', ['+td']));
    expect(result.status).toBe('rejected');
    expect(result.error?.code).toBe('UNSUPPORTED_TRANSFER_SYNTAX');
    expect(result.error?.message).toContain('1.2.840.10008.1.2.1.99 (Deflated Explicit VR Little Endian)');
  });

  it('gives the algorithm a color capture of a run (True Color Secondary Capture, RGB or JPEG Baseline) as the run itself', async () => {
    const gray = synthesizeXaRun({ seed: 33, rows: 64, columns: 64, frames: 6, bitsStored: 8 });
    const samples = decodeFrames(gray.bytes).frames.pixels;
    const captured = writeColorRun({ rows: 64, columns: 64, frames: 6, rgb: (f, p) => [samples[f * 4096 + p]!, samples[f * 4096 + p]!, samples[f * 4096 + p]!] });
    const original = await send(gray.bytes);
    const color = await send(captured);
    expect(color.status, JSON.stringify(color.error)).toBe('ok');
    expect(color.output).toEqual(original.output);
    const input = path.join(dir, `color-${++uid}.dcm`);
    await writeFile(input, captured);
    await exec('dcmcjpeg', ['+eb', input, `${input}.jpg.dcm`]);
    const lossy = await send(await readFile(`${input}.jpg.dcm`));
    expect(lossy.status, JSON.stringify(lossy.error)).toBe('ok');
  });
});
