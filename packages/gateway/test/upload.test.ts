import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { createS3Client, runObjectKey, uploadRun, type UploadProgress } from '@arteria/gateway';
import { BUCKET, freePort, objectBytes, sha256, smallRun, startServers, type Servers } from './helpers.js';

let servers: Servers;

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await servers?.close();
});

describe('uploadRun', () => {
  it('uploads bytes and reports their size and SHA-256', async () => {
    const bytes = smallRun(301);
    const uploaded = await uploadRun(servers.s3, { bucket: BUCKET, key: 'acme/dev/1.2.3/a.dcm', source: bytes });
    expect(uploaded).toEqual({ uri: `s3://${BUCKET}/acme/dev/1.2.3/a.dcm`, size: bytes.length, sha256: sha256(bytes) });
    expect((await objectBytes(servers.s3, uploaded.uri)).equals(bytes)).toBe(true);
  });

  it('streams a file in parts, hashing on the way', async () => {
    const bytes = Buffer.alloc(11 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    const path = join(servers.directory, 'parts.bin');
    await writeFile(path, bytes);
    const progress: UploadProgress[] = [];
    const uploaded = await uploadRun(
      servers.s3,
      { bucket: BUCKET, key: 'acme/dev/1.2.3/b.dcm', source: path },
      { partSizeBytes: 5 * 1024 * 1024, concurrency: 2, onProgress: (p) => progress.push(p) },
    );
    expect(uploaded).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
    expect((await objectBytes(servers.s3, uploaded.uri)).equals(bytes)).toBe(true);
    expect(progress.map((p) => p.part).sort()).toEqual([1, 2, 3]);
  });

  it('names objects by tenant, device, instance and entry', () => {
    expect(runObjectKey({ tenant: 'acme', device: 'cathlab-1', instanceUid: '1.2.840.1', entryId: 'e1' })).toBe('acme/cathlab-1/1.2.840.1/e1.dcm');
  });

  it('fails with UPLOAD_FAILED when storage cannot be reached', async () => {
    const port = await freePort();
    const s3 = createS3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    try {
      const error = await uploadRun(s3, { bucket: BUCKET, key: 'k.dcm', source: smallRun(302) }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ArteriaError);
      expect(error).toMatchObject({ code: 'UPLOAD_FAILED', retryable: true });
    } finally {
      s3.destroy();
    }
  });

  it('fails with INPUT_NOT_FOUND for a missing file', async () => {
    await expect(uploadRun(servers.s3, { bucket: BUCKET, key: 'k.dcm', source: join(servers.directory, 'missing.dcm') })).rejects.toMatchObject({
      code: 'INPUT_NOT_FOUND',
    });
  });

  it('rejects with the abort reason', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const uploading = uploadRun(servers.s3, { bucket: BUCKET, key: 'acme/dev/1.2.3/c.dcm', source: Buffer.alloc(12 * 1024 * 1024) }, { signal: controller.signal, partSizeBytes: 5 * 1024 * 1024 });
    controller.abort(reason);
    await expect(uploading).rejects.toBe(reason);
  });
});
