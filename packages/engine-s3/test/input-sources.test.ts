// Both ways a worker reads an input, over the S3 API and straight from the embedded
// store's files, run the InputSource conformance suite against one real store.
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { Upload } from '@aws-sdk/lib-storage';
import { inputSourceConformance, startEmbeddedStore, type InputSourceUnderTest, type RunningStore } from '@arteria/testing';
import { LocalStoreInputSource, s3InputSource } from '@arteria/engine-s3';
import type { InputSource } from '@arteria/ports';

const BUCKET = 'arteria-runs';

async function embeddedStore(sourceOf: (running: RunningStore) => InputSource): Promise<InputSourceUnderTest> {
  const running = await startEmbeddedStore([BUCKET]);
  const { s3 } = running;
  return {
    source: sourceOf(running),
    bucket: BUCKET,
    put: async (key, bytes) => {
      // Large runs go up in parts, as the gateway sends them.
      if (bytes.length > 8 << 20) await new Upload({ client: s3, params: { Bucket: BUCKET, Key: key, Body: bytes }, partSize: 5 << 20 }).done();
      else await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes }));
    },
    close: () => running.close(),
  };
}

inputSourceConformance('S3 API', () => embeddedStore((running) => s3InputSource(running.s3)));
inputSourceConformance('embedded store files', () => embeddedStore((running) => new LocalStoreInputSource(running.dir)));

describe('embedded store files: memory given to read into', () => {
  it('reads a segment into the memory given when it is the input\'s size (no fresh memory), and checks it as any read', async () => {
    const running = await startEmbeddedStore([BUCKET]);
    try {
      const bytes = Buffer.alloc(3 << 20, 5);
      await running.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'acme/cath-lab-1/run/s0', Body: bytes }));
      const input = { uri: `s3://${BUCKET}/acme/cath-lab-1/run/s0`, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), contentType: 'application/dicom' as const };
      const into = new Uint8Array(bytes.length);
      const got = await new LocalStoreInputSource(running.dir).fetch(input, { maxBytes: 64 << 20, into });
      expect(got.buffer).toBe(into.buffer);
      expect(got.byteLength).toBe(bytes.length);
      expect(Buffer.compare(got, bytes)).toBe(0);
    } finally {
      await running.close();
    }
  });
});
