// Both ways a worker reads an input (over the S3 API, and straight from the embedded
// store's files) against one real store: the same bytes, and the same typed errors.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { InputRef } from '@arteria/protocol';
import { EMBEDDED_S3_CREDENTIALS, EmbeddedObjectStore, LocalStoreInputSource, createS3Client, s3InputSource, type FetchOptions, type InputSource } from '@arteria/platform';
import { tempDir } from './support/platform.js';

const BUCKET = 'arteria-runs';
const LIMIT = { maxBytes: 64 << 20 };

function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** An input read the streaming way, gathered back into one buffer. */
async function streamed(source: InputSource, input: InputRef, options: FetchOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source.stream(input, options)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const ref = (key: string, bytes: Uint8Array, bucket = BUCKET): InputRef => ({ uri: `s3://${bucket}/${key}`, size: bytes.length, sha256: sha256(bytes), contentType: 'application/dicom' });

describe('input sources: S3 API and the embedded store\'s files agree', () => {
  const store = new EmbeddedObjectStore();
  let s3: S3Client;
  let remove: () => Promise<void>;
  let sources: [string, InputSource][];
  const small = bytesOf(70_001, 1);
  const large = bytesOf(12 << 20, 2); // uploaded in parts, as the gateway does for big runs

  beforeAll(async () => {
    const tmp = await tempDir('inputs');
    remove = () => tmp.remove();
    await store.start({ host: '127.0.0.1', port: 0, directory: tmp.dir, buckets: [BUCKET] });
    s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/cath-lab-1/run-1.dcm', Body: small }));
    await new Upload({ client: s3, params: { Bucket: BUCKET, Key: 'acme/cath-lab-1/deep/run 2 (big).dcm', Body: large }, partSize: 5 << 20 }).done();
    sources = [
      ['S3 API', s3InputSource(s3)],
      ['embedded store files', new LocalStoreInputSource(tmp.dir)],
    ];
  });
  afterAll(async () => {
    s3.destroy();
    await store.close();
    await remove();
  });

  it('returns exactly the stored bytes, small and multipart, from either source, whole or streamed', async () => {
    for (const [, source] of sources) {
      expect(Buffer.compare(await source.fetch(ref('acme/cath-lab-1/run-1.dcm', small), LIMIT), Buffer.from(small))).toBe(0);
      expect(Buffer.compare(await source.fetch(ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), LIMIT), Buffer.from(large))).toBe(0);
      expect(Buffer.compare(await streamed(source, ref('acme/cath-lab-1/run-1.dcm', small), LIMIT), Buffer.from(small))).toBe(0);
      expect(Buffer.compare(await streamed(source, ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), LIMIT), Buffer.from(large))).toBe(0);
    }
  });

  it('fails with the same codes for a missing key, a missing bucket, a wrong size, a wrong hash and a too-large input', async () => {
    const key = 'acme/cath-lab-1/run-1.dcm';
    const cases: [InputRef, typeof LIMIT, string][] = [
      [ref('acme/cath-lab-1/none.dcm', small), LIMIT, 'INPUT_NOT_FOUND'],
      [ref(key, small, 'no-such-bucket'), LIMIT, 'INPUT_NOT_FOUND'],
      [{ ...ref(key, small), size: small.length - 1 }, LIMIT, 'CHECKSUM_MISMATCH'],
      [{ ...ref(key, small), size: small.length + 1 }, LIMIT, 'CHECKSUM_MISMATCH'],
      [{ ...ref(key, small), sha256: sha256(large) }, LIMIT, 'CHECKSUM_MISMATCH'],
      [ref(key, small), { maxBytes: 1000 }, 'INPUT_TOO_LARGE'],
    ];
    for (const [name, source] of sources) {
      for (const [input, limit, code] of cases) {
        await expect(source.fetch(input, limit), `${name}: ${input.uri} ${input.size}`).rejects.toMatchObject({ code });
        await expect(streamed(source, input, limit), `${name} streamed: ${input.uri} ${input.size}`).rejects.toMatchObject({ code });
      }
    }
  });

  it('never reads outside the store: a key that climbs out of its bucket does not exist', async () => {
    const local = sources[1]![1];
    for (const key of ['../arteria-runs/acme/cath-lab-1/run-1.dcm', 'acme/../../../etc/passwd', '../../../../../../etc/hostname']) {
      await expect(local.fetch(ref(key, small), LIMIT)).rejects.toMatchObject({ code: 'INPUT_NOT_FOUND' });
    }
    await expect(local.fetch(ref('x', small, '..'), LIMIT)).rejects.toMatchObject({ code: 'INPUT_NOT_FOUND' });
  });

  it('stops when the work is aborted', async () => {
    for (const [, source] of sources) {
      const abort = new AbortController();
      abort.abort(new Error('lease lost'));
      await expect(source.fetch(ref('acme/cath-lab-1/deep/run 2 (big).dcm', large), { ...LIMIT, signal: abort.signal })).rejects.toThrow();
    }
  });
});
