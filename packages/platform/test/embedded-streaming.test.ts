// The worker streams each input from the store into the algorithm: fetch, SHA-256, decode
// and compute overlap. These tests hold it to the whole-file path's answers and checks.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { synthesizeXaRun } from '@arteria/dicom';
import { encodePayload, type RequestV1 } from '@arteria/protocol';
import { runAlgorithmOnDicom, type Algorithm } from '@arteria/sdk';
import type { TestDevice } from '@arteria/testing';
import { fixtureAlgorithm, startPlatformWithDevice } from './support/platform.js';

const CONTRAST_INJECTION = fileURLToPath(new URL('../../../algorithms/contrast-injection', import.meta.url));

describe('embedded platform: streamed inputs', () => {
  let s3: S3Client;
  let device: TestDevice;
  let cleanup: () => Promise<void>;
  const bucket = 'arteria-runs';
  // 12 MB: a dozen chunks from the store and several frame batches in the algorithm's thread.
  const run = synthesizeXaRun({ seed: 41, rows: 512, columns: 512, frames: 48, bitsStored: 8 }).bytes;
  let uid = 0;

  const prepare = (bytes: Uint8Array): Promise<RequestV1> => device.prepare(s3, bucket, bytes, 'contrast-injection@^1', `1.2.826.0.1.3680043.10.11.${++uid}`);
  const answer = async (request: RequestV1): Promise<Awaited<ReturnType<TestDevice['next']>>> => {
    await device.publishRaw(encodePayload(request));
    return device.next((r) => r.requestId === request.id);
  };

  beforeAll(async () => {
    ({ s3, device, close: cleanup } = await startPlatformWithDevice('stream', (tmp) => ({
      dataDir: path.join(tmp, 'data'),
      overrides: { algorithmDirs: [fixtureAlgorithm('echo'), CONTRAST_INJECTION] },
    })));
  });
  afterAll(async () => cleanup());

  it('gives a streamed run the result the whole-file path gives', async () => {
    const result = await answer(await prepare(run));
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    const { default: algorithm } = (await import('@arteria/contrast-injection')) as { default: Algorithm };
    const whole = await runAlgorithmOnDicom(algorithm, new Uint8Array(run));
    expect(result.output).toEqual(JSON.parse(JSON.stringify(whole)));
    expect((result.output as { contrastDetected: boolean }).contrastDetected).toBe(true);
  });

  it('refuses an object altered after upload (CHECKSUM_MISMATCH) and publishes no output', async () => {
    const request = await prepare(run);
    // Same size, one pixel of the last frame changed: decoding and computing succeed, the hash does not.
    const altered = Buffer.from(run);
    altered[altered.length - 10] = (altered[altered.length - 10]! + 1) & 0xff;
    const { bucket: b, key } = /^s3:\/\/(?<bucket>[^/]+)\/(?<key>.+)$/.exec(request.inputs[0]!.uri)!.groups as { bucket: string; key: string };
    await s3.send(new PutObjectCommand({ Bucket: b, Key: key, Body: altered }));
    const result = await answer(request);
    expect(result.status).toBe('rejected');
    expect(result.error?.code).toBe('CHECKSUM_MISMATCH');
    expect(result.output).toBeUndefined();
  });

  it('fails a truncated run with INVALID_DICOM', async () => {
    const truncated = run.subarray(0, run.length - 300_000);
    const result = await answer(await prepare(truncated));
    expect(result.status).toBe('rejected');
    expect(result.error?.code).toBe('INVALID_DICOM');
    expect(result.error?.message).toContain('truncated');
  });

  it('holds a whole-run algorithm, whose idle thread gets the input read whole, to the same checks', async () => {
    const prepareEcho = (bytes: Uint8Array): Promise<RequestV1> => device.prepare(s3, bucket, bytes, 'echo@^1', `1.2.826.0.1.3680043.10.11.${++uid}`);
    const request = await prepareEcho(run);
    const altered = Buffer.from(run);
    altered[altered.length - 10] = (altered[altered.length - 10]! + 1) & 0xff;
    const { bucket: b, key } = /^s3:\/\/(?<bucket>[^/]+)\/(?<key>.+)$/.exec(request.inputs[0]!.uri)!.groups as { bucket: string; key: string };
    await s3.send(new PutObjectCommand({ Bucket: b, Key: key, Body: altered }));
    const refused = await answer(request);
    expect(refused.status).toBe('rejected');
    expect(refused.error?.code).toBe('CHECKSUM_MISMATCH');
    expect(refused.output).toBeUndefined();
    const truncated = await answer(await prepareEcho(run.subarray(0, run.length - 300_000)));
    expect(truncated.status).toBe('rejected');
    expect(truncated.error?.code).toBe('INVALID_DICOM');
    expect(truncated.error?.message).toContain('truncated');
  });

  it('collects the frames for an algorithm that only takes whole runs', async () => {
    const request = await device.prepare(s3, bucket, run, 'echo@^1', `1.2.826.0.1.3680043.10.11.${++uid}`);
    const result = await answer(request);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.output).toMatchObject({ frames: 48, rows: 512, columns: 512, modality: 'XA' });
  });
});
