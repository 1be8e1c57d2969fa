// An upload grant that starts the multipart upload on the platform's side: one round trip
// gives the upload id and the URLs for it. Real store, real signatures.
import { randomFillSync } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedObjectStore, UploadGrantIssuer, createS3Client } from '@arteria/engine-s3';
import type { GrantAnswerV1 } from '@arteria/protocol';
import { tempDir } from '@arteria/testing';

const BUCKET = 'arteria-runs';
const KEY = { accessKeyId: 'arteria-grant-start-test', secretAccessKey: 'a-secret-only-the-platform-holds' };
const FROM = { tenant: 'acme', device: 'dev-a' };

describe('upload grants: a create with part URLs starts the upload', () => {
  const store = new EmbeddedObjectStore();
  let platform: S3Client;
  let grants: UploadGrantIssuer;
  let remove: () => Promise<void>;

  beforeAll(async () => {
    const tmp = await tempDir('grant-start');
    remove = () => tmp.remove();
    await store.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: [BUCKET], credentials: KEY });
    platform = createS3Client({ endpoint: store.endpoint, region: 'us-east-1', ...KEY, forcePathStyle: true });
    grants = new UploadGrantIssuer({ signer: platform, bucket: BUCKET });
  });

  afterAll(async () => {
    platform?.destroy();
    await store.close();
    await remove();
  });

  const ask = (key: string, id: string): Promise<GrantAnswerV1> => grants.issue(FROM, { v: 1, kind: 'grant', id, key, operations: ['create', 'complete', 'head'], parts: [1, 2] });

  it('answers with the upload id, its part, complete and head URLs (no create URL), and they write the object', async () => {
    const key = 'acme/dev-a/1.2.3/started.dcm';
    const answer = await ask(key, 'start-1');
    expect(answer.error).toBeUndefined();
    expect(answer.uploadId).toMatch(/^[0-9a-f]{32}$/);
    expect(Object.keys(answer.urls).sort()).toEqual(['complete', 'head']);
    expect(answer.parts.map((p) => p.partNumber)).toEqual([1, 2]);
    const parts = [randomFillSync(Buffer.alloc(5 * 1024 * 1024)), randomFillSync(Buffer.alloc(777))];
    // Each part URL is signed for its own part number.
    const moved = new URL(answer.parts[1]?.url ?? '');
    moved.searchParams.set('partNumber', '3');
    expect((await fetch(moved, { method: 'PUT', body: parts[1] })).status).toBe(403);
    const etags: string[] = [];
    for (const [i, part] of answer.parts.entries()) {
      const sent = await fetch(part.url, { method: 'PUT', body: parts[i] });
      expect(sent.status).toBe(200);
      etags.push(sent.headers.get('etag') ?? '');
    }
    const list = `<CompleteMultipartUpload>${etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    expect((await fetch(answer.urls.complete ?? '', { method: 'POST', body: list })).status).toBe(200);
    const head = await fetch(answer.urls.head ?? '', { method: 'HEAD' });
    expect(Number(head.headers.get('content-length'))).toBe(parts[0]!.length + parts[1]!.length);
    const got = await platform.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    // Written once: a second start for the stored key is refused.
    expect((await ask(key, 'start-2')).error?.code).toBe('OBJECT_EXISTS');
  });

  it('starts nothing for another device\'s key', async () => {
    const answer = await ask('acme/dev-b/1.2.3/theirs.dcm', 'start-3');
    expect(answer).toMatchObject({ error: { code: 'NOT_AUTHORIZED' }, parts: [], urls: {} });
    expect(answer.uploadId).toBeUndefined();
  });
});
