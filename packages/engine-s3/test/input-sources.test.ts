// Both ways a worker reads an input, over the S3 API and straight from the embedded
// store's files, run the InputSource conformance suite against one real store.
import { PutObjectCommand } from '@aws-sdk/client-s3';
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
