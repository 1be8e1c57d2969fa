// CompleteMultipartUpload on the embedded store: the object assembled from its parts,
// S3's multipart ETag, the initiating request's metadata, and S3's refusals.
import { createHash, randomFillSync } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { suiteStore } from '@arteria/testing';

const BUCKET = 'arteria-runs';
const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('embedded object store: completing a multipart upload', () => {
  const store = suiteStore([BUCKET]);

  /**
   * A multipart upload of `parts`, sent in `order` (part indexes; default: the last part
   * first, so none fits the slot the first part sets and completion copies); returns its
   * id and the parts' ETags.
   */
  async function upload(key: string, parts: Buffer[], order = parts.map((_, i) => parts.length - 1 - i)): Promise<{ uploadId: string; etags: string[] }> {
    const created = await store.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ContentType: 'application/dicom' }));
    const uploadId = created.UploadId ?? '';
    const etags: string[] = new Array<string>(parts.length);
    for (const i of order) {
      const sent = await store.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: parts[i] }));
      etags[i] = sent.ETag ?? '';
    }
    return { uploadId, etags };
  }

  it('assembles the parts in order, with S3\'s multipart ETag and the upload\'s content type, and removes the upload', async () => {
    const parts = [Buffer.alloc(5 * 1024 * 1024 + 3), Buffer.alloc(5 * 1024 * 1024), Buffer.alloc(1234)].map((b) => randomFillSync(b));
    const key = 'acme/dev/1.2.3/whole.dcm';
    const { uploadId, etags } = await upload(key, parts);
    const done = await store.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
    // Each part's ETag is the SHA-256 of its bytes; the object's is made from them as S3 makes a multipart ETag.
    expect(etags).toEqual(parts.map((p) => `"${sha256(p)}"`));
    const expected = `${md5(Buffer.concat(parts.map((p) => Buffer.from(sha256(p), 'hex'))))}-3`;
    expect(done.ETag).toBe(`"${expected}"`);
    const head = await store.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head).toMatchObject({ ContentLength: parts.reduce((n, p) => n + p.length, 0), ETag: `"${expected}"`, ContentType: 'application/dicom' });
    const got = await store.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    expect((await store.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).toEqual([]);
    // Nothing of the upload is left beside the object.
    expect(await readdir(path.join(store.dir, BUCKET, '._S3rver_uploads')).catch(() => [])).toEqual([]);
    await expect(store.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: [{ ETag: etags[0], PartNumber: 1 }] } }))).rejects.toMatchObject({ name: 'NoSuchUpload' });
  });

  it('completes in place parts sent in any order into their slots, a part sent twice included', async () => {
    const size = 5 * 1024 * 1024;
    const parts = [Buffer.alloc(size), Buffer.alloc(size), Buffer.alloc(size), Buffer.alloc(4321)].map((b) => randomFillSync(b));
    const key = 'acme/dev/1.2.3/in-place.dcm';
    const { uploadId, etags } = await upload(key, parts, [0, 2, 1, 3, 2]);
    const [upload0] = (await store.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: key }))).Uploads ?? [];
    expect(upload0?.UploadId).toBe(uploadId);
    // The parts sit in one file of the upload: none has a file of its own.
    const names = await readdir(path.join(store.dir, BUCKET, '._S3rver_uploads', uploadId));
    expect(names.filter((n) => /^\d+$/.test(n))).toEqual([]);
    await store.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
    const got = await store.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    expect((await store.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ContentLength).toBe(3 * size + 4321);
  });

  it('refuses a part whose bytes do not match its Content-MD5 or x-amz-checksum-sha256 (BadDigest), lists it only once sent whole', async () => {
    const key = 'acme/dev/1.2.3/checked-parts.dcm';
    const part = randomFillSync(Buffer.alloc(5 * 1024 * 1024));
    const other = Buffer.from(part);
    other[12345] = (other[12345] ?? 0) ^ 0xff;
    const created = await store.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const send = (body: Buffer, check: { ContentMD5?: string; ChecksumSHA256?: string }): Promise<unknown> =>
      store.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: 1, Body: body, ...check }));
    await expect(send(other, { ContentMD5: createHash('md5').update(part).digest('base64') })).rejects.toMatchObject({ name: 'BadDigest' });
    await expect(send(other, { ChecksumSHA256: createHash('sha256').update(part).digest('base64') })).rejects.toMatchObject({ name: 'BadDigest' });
    expect((await store.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId }))).Parts ?? []).toEqual([]);
    await send(part, { ChecksumSHA256: createHash('sha256').update(part).digest('base64') });
    expect((await store.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId }))).Parts?.map((p) => p.ETag)).toEqual([`"${sha256(part)}"`]);
  });

  it('refuses a part list that names a missing part, a wrong ETag or parts out of order, and keeps the upload', async () => {
    const parts = [randomFillSync(Buffer.alloc(5 * 1024 * 1024)), randomFillSync(Buffer.alloc(100))];
    const key = 'acme/dev/1.2.3/refused.dcm';
    const { uploadId, etags } = await upload(key, parts);
    const complete = (list: { ETag: string | undefined; PartNumber: number }[]): Promise<unknown> =>
      store.s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: list } }));
    await expect(complete([{ ETag: etags[0], PartNumber: 1 }, { ETag: etags[1], PartNumber: 3 }])).rejects.toMatchObject({ name: 'InvalidPart' });
    await expect(complete([{ ETag: etags[0], PartNumber: 1 }, { ETag: `"${'0'.repeat(32)}"`, PartNumber: 2 }])).rejects.toMatchObject({ name: 'InvalidPart' });
    await expect(complete([{ ETag: etags[1], PartNumber: 2 }, { ETag: etags[0], PartNumber: 1 }])).rejects.toMatchObject({ name: 'InvalidPartOrder' });
    await expect(store.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({ name: 'NotFound' });
    // The upload is still there and completes with the right list.
    await complete(etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })));
    const got = await store.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
  });
});
