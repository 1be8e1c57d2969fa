// The embedded object store as an attacker meets it: unsigned requests, the public
// development key, altered, reused and expired upload grants. Real store, real signatures.
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_S3_CREDENTIALS, EmbeddedObjectStore, UploadGrantIssuer, createS3Client } from '@arteria/engine-s3';
import type { GrantAnswerV1 } from '@arteria/protocol';
import { tempDir } from '@arteria/testing';

const BUCKET = 'arteria-runs';
const KEY = { accessKeyId: 'arteria-store-test', secretAccessKey: 'a-secret-only-the-platform-holds' };
const A = { tenant: 'acme', device: 'dev-a' };

/** What the store answers: status and S3 error code. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; code: string | undefined; body: string }> {
  const response = await fetch(url, init);
  const body = await response.text();
  return { status: response.status, code: /<Code>([^<]+)<\/Code>/.exec(body)?.[1], body };
}

const urlOf = (answer: GrantAnswerV1, op: keyof GrantAnswerV1['urls']): string => {
  const url = answer.urls[op];
  if (url === undefined) throw new Error(`no ${op} URL in the grant: ${JSON.stringify(answer.error)}`);
  return url;
};

describe('embedded object store: signed requests only', () => {
  const store = new EmbeddedObjectStore();
  let platform: S3Client;
  let grants: UploadGrantIssuer;
  let shortGrants: UploadGrantIssuer;
  let remove: () => Promise<void>;

  beforeAll(async () => {
    const tmp = await tempDir('store-signature');
    remove = () => tmp.remove();
    await store.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: [BUCKET], credentials: KEY });
    platform = createS3Client({ endpoint: store.endpoint, region: 'us-east-1', ...KEY, forcePathStyle: true });
    grants = new UploadGrantIssuer({ signer: platform, bucket: BUCKET });
    shortGrants = new UploadGrantIssuer({ signer: platform, bucket: BUCKET, ttlMs: 1000 });
    await platform.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev-b/run/b.dcm', Body: Buffer.from('device b run') }));
    await platform.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev-a/run/old.dcm', Body: Buffer.from('device a run') }));
  });
  afterAll(async () => {
    platform.destroy();
    await store.close();
    await remove();
  });

  it('refuses every unsigned request: list buckets, list objects, read, write, create a bucket', async () => {
    const e = store.endpoint;
    const refused = [
      await call(`${e}/`),
      await call(`${e}/${BUCKET}?list-type=2`),
      await call(`${e}/${BUCKET}?uploads`),
      await call(`${e}/${BUCKET}/acme/dev-b/run/b.dcm`),
      await call(`${e}/${BUCKET}/acme/dev-b/run/b.dcm`, { method: 'HEAD' }),
      await call(`${e}/${BUCKET}/acme/dev-a/evil.dcm`, { method: 'PUT', body: 'x' }),
      await call(`${e}/another-bucket`, { method: 'PUT' }),
    ];
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 403));
    expect(refused.filter((r) => r.body !== '').every((r) => r.code === 'AccessDenied')).toBe(true);
  });

  it('refuses the public development key and a forged signature; serves the store\'s own key', async () => {
    const dev = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    const forged = createS3Client({ endpoint: store.endpoint, region: 'us-east-1', accessKeyId: KEY.accessKeyId, secretAccessKey: 'guessed', forcePathStyle: true });
    try {
      await expect(dev.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev-a/x.dcm', Body: 'x' }))).rejects.toMatchObject({ name: 'InvalidAccessKeyId' });
      await expect(forged.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev-a/x.dcm', Body: 'x' }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
      await expect(platform.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/dev-a/ok.dcm', Body: 'ok' }))).resolves.toBeDefined();
    } finally {
      dev.destroy();
      forged.destroy();
    }
  });

  it('a grant writes its one new key and reads only its size: no other key, no other method, no listing, no bytes', async () => {
    const answer = await grants.issue(A, { v: 1, kind: 'grant', id: 'g1', key: 'acme/dev-a/run/new.dcm', operations: ['put', 'head'] });
    const put = urlOf(answer, 'put');
    const head = urlOf(answer, 'head');
    expect((await call(put, { method: 'PUT', body: 'run bytes' })).status).toBe(200);
    expect((await call(head, { method: 'HEAD' })).status).toBe(200);
    // The signature covers method, path and query: every change is refused.
    const retarget = (url: string, key: string): string => url.replace('/acme/dev-a/run/new.dcm', `/${key}`);
    const attempts = [
      await call(retarget(put, 'acme/dev-a/run/other.dcm'), { method: 'PUT', body: 'x' }),
      await call(retarget(put, 'acme/dev-b/run/b.dcm'), { method: 'PUT', body: 'x' }),
      await call(retarget(put, 'hosp2/icu-1/x.dcm'), { method: 'PUT', body: 'x' }),
      await call(head, { method: 'GET' }), // its own object's bytes
      await call(put, { method: 'GET' }),
      await call(put.replace('/acme/dev-a/run/new.dcm?', '?list-type=2&'), { method: 'GET' }),
      await call(retarget(head, 'acme/dev-b/run/b.dcm'), { method: 'HEAD' }),
      await call(put.replace(`/${BUCKET}/acme/dev-a/run/new.dcm`, '/another-bucket'), { method: 'PUT' }),
    ];
    expect(attempts.map((r) => r.status)).toEqual(attempts.map(() => 403));
    expect(attempts.filter((r) => r.body !== '').every((r) => r.code === 'SignatureDoesNotMatch')).toBe(true);
  });

  it('refuses grants outside the device\'s prefix and writes over a stored object', async () => {
    const ask = (key: string, operations: ('put' | 'create' | 'head')[] = ['put']) => grants.issue(A, { v: 1, kind: 'grant', id: 'g2', key, operations });
    for (const key of ['acme/dev-b/run/x.dcm', 'hosp2/icu-1/run/x.dcm', 'acme/dev-a/../dev-b/x.dcm', 'acme/dev-a', 'acme/dev-a//x.dcm', 'acme/dev-a/./x.dcm']) {
      const answer = await ask(key);
      expect(answer.error?.code, key).toBe('NOT_AUTHORIZED');
      expect(answer.urls).toEqual({});
    }
    const existing = await ask('acme/dev-a/run/old.dcm', ['create']);
    expect(existing.error?.code).toBe('OBJECT_EXISTS');
    expect(existing.urls).toEqual({});
    // Its size and ETag stay readable to its writer (a resumed upload checks what it completed).
    expect((await ask('acme/dev-a/run/old.dcm', ['head'])).error).toBeUndefined();
  });

  it('refuses a grant once it has expired', async () => {
    const answer = await shortGrants.issue(A, { v: 1, kind: 'grant', id: 'g3', key: 'acme/dev-a/run/late.dcm', operations: ['put'] });
    const put = urlOf(answer, 'put');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const late = await call(put, { method: 'PUT', body: 'late' });
    expect(late.status).toBe(403);
    expect(late.body).toMatch(/expired/);
  });
});
