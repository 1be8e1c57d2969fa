// PutObject on the embedded store: the ETag is the SHA-256 of the bytes (stable per
// content, never taken for an MD5), a digest the client declares is checked and a body
// that does not match it is refused with nothing stored, and a body cut short is never
// an object.
import { createHash, randomFillSync } from 'node:crypto';
import { request } from 'node:http';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { UploadGrantIssuer } from '@arteria/engine-s3';
import { suiteStore } from '@arteria/testing';

const BUCKET = 'arteria-runs';
const sha256 = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest();

/** The same body with one byte changed, as a link or a broken proxy would deliver it. */
const corrupted = (bytes: Buffer): Buffer => {
  const copy = Buffer.from(bytes);
  copy[copy.length >> 1] = (copy[copy.length >> 1] ?? 0) ^ 0xff;
  return copy;
};

describe('embedded object store: PutObject', () => {
  const store = suiteStore([BUCKET]);

  const body = async (key: string): Promise<Buffer> => Buffer.from(await (await store.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray());

  it('gives the SHA-256 of the bytes as the ETag, the same for the same bytes under any key, and keeps the metadata', async () => {
    const bytes = randomFillSync(Buffer.alloc(3 * 1024 * 1024 + 17));
    const etag = `"${sha256(bytes).toString('hex')}"`;
    const first = await store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev/run/s0', Body: bytes, ContentType: 'application/dicom', Metadata: { frames: '3' } }));
    const second = await store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev/run/s0-again', Body: bytes }));
    const other = await store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev/run/s1', Body: corrupted(bytes) }));
    expect(first.ETag).toBe(etag);
    expect(second.ETag).toBe(etag);
    expect(other.ETag).not.toBe(etag);
    // 64 hex digits: no client takes it for the MD5 of the bytes, as it would a 32-digit ETag.
    expect(first.ETag).toMatch(/^"[0-9a-f]{64}"$/);
    const head = await store.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'acme/dev/run/s0' }));
    expect(head).toMatchObject({ ETag: etag, ContentLength: bytes.length, ContentType: 'application/dicom', Metadata: { frames: '3' } });
    expect((await body('acme/dev/run/s0')).equals(bytes)).toBe(true);
    const listed = await store.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'acme/dev/run/' }));
    expect(listed.Contents?.map((o) => [o.Key, o.ETag]).sort()).toEqual([
      ['acme/dev/run/s0', etag],
      ['acme/dev/run/s0-again', etag],
      ['acme/dev/run/s1', other.ETag],
    ]);
  });

  it('refuses a body that does not match its Content-MD5 or x-amz-checksum-sha256, and keeps the object stored before', async () => {
    const key = 'acme/dev/run/checked';
    const before = randomFillSync(Buffer.alloc(64 * 1024));
    await store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: before }));
    const bytes = randomFillSync(Buffer.alloc(1024 * 1024));
    const md5 = createHash('md5').update(bytes).digest('base64');
    const checksum = sha256(bytes).toString('base64');
    await expect(store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: corrupted(bytes), ContentMD5: md5 }))).rejects.toMatchObject({ name: 'BadDigest' });
    await expect(store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: corrupted(bytes), ChecksumSHA256: checksum }))).rejects.toMatchObject({ name: 'BadDigest' });
    expect((await body(key)).equals(before)).toBe(true);
    // The matching bodies are stored, the checksum given back as S3 does.
    await store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes, ContentMD5: md5 }));
    const put = await store.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes, ChecksumSHA256: checksum }));
    expect(put.ChecksumSHA256).toBe(checksum);
    expect((await body(key)).equals(bytes)).toBe(true);
    // Nothing of the refused bodies is left beside the object.
    expect((await readdir(path.join(store.dir, BUCKET, 'acme', 'dev', 'run'))).filter((n) => n.endsWith('.put'))).toEqual([]);
  });

  it('refuses a body that does not match the payload hash its signature covers', async () => {
    const key = 'acme/dev/run/signed';
    const bytes = randomFillSync(Buffer.alloc(256 * 1024));
    const put = new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes });
    // After signing (the SDK signs the SHA-256 of the body over plain http): the body changes on its way.
    put.middlewareStack.add(
      (next) => (args) => {
        const outgoing = args.request as { body: unknown; headers: Record<string, string> };
        expect(outgoing.headers['x-amz-content-sha256']).toBe(sha256(bytes).toString('hex'));
        outgoing.body = corrupted(bytes);
        return next(args);
      },
      { step: 'deserialize', priority: 'low', name: 'corruptAfterSigning' },
    );
    await expect(store.s3.send(put)).rejects.toMatchObject({ name: 'XAmzContentSHA256Mismatch' });
    await expect(store.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({ name: 'NotFound' });
  });

  it('stores nothing of a body cut short, and the same key is written whole afterwards', async () => {
    const grants = new UploadGrantIssuer({ signer: store.s3, bucket: BUCKET });
    const key = 'acme/dev/run/cut';
    const answer = await grants.issue({ tenant: 'acme', device: 'dev' }, { v: 1, kind: 'grant', id: 'g1', key, operations: ['put'] });
    const url = new URL(answer.urls.put ?? '');
    await new Promise<void>((resolve) => {
      const req = request(url, { method: 'PUT', headers: { 'content-length': 1024 * 1024 } });
      req.on('error', () => resolve()); // the connection the client broke
      req.write(Buffer.alloc(64 * 1024), () => setTimeout(() => req.destroy(), 100));
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(store.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({ name: 'NotFound' });
    expect((await readdir(path.join(store.dir, BUCKET, 'acme', 'dev', 'run'))).filter((n) => n.startsWith('cut'))).toEqual([]);
    const bytes = randomFillSync(Buffer.alloc(1024 * 1024));
    const stored = await fetch(url, { method: 'PUT', body: bytes });
    expect(stored.status).toBe(200);
    expect(stored.headers.get('etag')).toBe(`"${sha256(bytes).toString('hex')}"`);
    expect((await body(key)).equals(bytes)).toBe(true);
  });
});
