import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import dicomParser from 'dicom-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import type { GatewayResult } from '@arteria/gateway';
import { EMBEDDED_S3_CREDENTIALS, type EmbeddedPlatform } from '@arteria/platform';
import { gatewayWithIntake, startDicomPlatform } from './support/dicom-platform.js';

const exec = promisify(execFile);
const SECRET = 'dicom-compressed-e2e-tenant-secret-0123';
const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
const RLE_LOSSLESS = '1.2.840.10008.1.2.5';

describe('compressed runs from the modality, computed by the embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let stopPlatform: () => Promise<void>;

  beforeAll(async () => {
    ({ dir, platform, close: stopPlatform } = await startDicomPlatform('arteria-dicom-compressed-e2e-', SECRET));
  });
  afterAll(async () => stopPlatform());

  it('storescu sends JPEG Lossless and RLE runs; the gateway keeps them compressed; the platform decodes and computes', async () => {
    const { gateway, intake } = gatewayWithIntake(platform, SECRET, 'cathlab-compressed', path.join(dir, 'gateway'));
    const results: GatewayResult[] = [];
    const bothDone = new Promise<void>((resolve) =>
      gateway.on('result', ({ result }) => {
        results.push(result);
        if (results.length === 2) resolve();
      }),
    );
    await gateway.start();
    await intake.start();
    try {
      const runs = [
        { seed: 7, tool: 'dcmcjpeg', propose: '-xs', syntax: JPEG_LOSSLESS_SV1 },
        { seed: 8, tool: 'dcmcrle', propose: '-xr', syntax: RLE_LOSSLESS },
      ] as const;
      for (const { seed, tool, propose, syntax } of runs) {
        const synthetic = synthesizeXaRun({ seed, rows: 96, columns: 96, frames: 30, frameRateHz: 15, bitsStored: 12, contrast: { startFrame: 8, peakFrame: 15, endFrame: 26 } });
        const native = path.join(dir, `run-${seed}.native.dcm`);
        const compressed = path.join(dir, `run-${seed}.dcm`);
        await writeFile(native, synthetic.bytes);
        await exec(tool, [native, compressed]);
        expect(dicomParser.parseDicom(await readFile(compressed), { untilTag: 'x7fe00010' }).string('x00020010')).toBe(syntax);
        await exec('storescu', ['-R', propose, '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), compressed]);
      }
      await bothDone;
      const s3 = new S3Client({ endpoint: platform.s3Endpoint, region: EMBEDDED_S3_CREDENTIALS.region, forcePathStyle: true, credentials: { accessKeyId: platform.storeCredentials.accessKeyId, secretAccessKey: platform.storeCredentials.secretAccessKey } });
      const syntaxes: string[] = [];
      for (const result of results) {
        expect(result.status).toBe('ok');
        // Computed on the decoded pixels: the synthesized contrast injection is found.
        expect((result.output as { contrastDetected: boolean }).contrastDetected).toBe(true);
        // What the platform received is the run as the modality sent it: still compressed.
        const entry = await platform.ledger.get(result.requestId);
        expect(entry?.request?.instanceUid.startsWith('2.25.')).toBe(true);
        const uri = /^s3:\/\/([^/]+)\/(.+)$/.exec(entry?.request?.inputs[0]?.uri ?? '');
        const object = await s3.send(new GetObjectCommand({ Bucket: uri?.[1], Key: uri?.[2] }));
        const uploaded = dicomParser.parseDicom(Buffer.from((await object.Body?.transformToByteArray()) ?? []), { untilTag: 'x7fe00010' });
        syntaxes.push(uploaded.string('x00020010') ?? '');
        expect(uploaded.string('x00120062')).toBe('YES'); // de-identified on the way
      }
      s3.destroy();
      expect(syntaxes.sort()).toEqual([JPEG_LOSSLESS_SV1, RLE_LOSSLESS].sort());
      await intake.idle();
    } finally {
      await intake.close();
      await gateway.close();
    }
  });
});
