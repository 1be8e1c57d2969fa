import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { EmbeddedBroker } from '@arteria/engine-mqtt';
import { EMBEDDED_S3_CREDENTIALS, EmbeddedObjectStore, createS3Client, s3ObjectBucket } from '@arteria/engine-s3';
import type { ObjectBucket } from '@arteria/ports';

export interface RunningStore {
  store: EmbeddedObjectStore;
  /** A client with the store's development key. */
  s3: S3Client;
  dir: string;
  /** One of its buckets through the ObjectBucket port, as the platform's own records use it. */
  bucket(name: string): ObjectBucket;
  close(): Promise<void>;
}

/** The embedded S3-API store on a free loopback port, in a fresh folder, with `buckets`. */
export async function startEmbeddedStore(buckets: readonly string[]): Promise<RunningStore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'arteria-store-'));
  const store = new EmbeddedObjectStore();
  await store.start({ host: '127.0.0.1', port: 0, directory: dir, buckets: [...buckets] });
  const s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
  return {
    store,
    s3,
    dir,
    bucket: (name) => s3ObjectBucket(s3, name),
    close: async () => {
      s3.destroy();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The embedded store for the tests of one `describe`: started before them, closed after.
 * Its client and folder are read inside the tests (before, it is not started yet).
 */
export function suiteStore(buckets: readonly string[]): Pick<RunningStore, 's3' | 'dir'> {
  let running: RunningStore | undefined;
  beforeAll(async () => {
    running = await startEmbeddedStore(buckets);
  });
  afterAll(() => running?.close());
  const started = (): RunningStore => {
    if (running === undefined) throw new ArteriaError('ILLEGAL_STATE', 'the suite store starts in beforeAll: read it inside a test');
    return running;
  };
  return {
    get s3() {
      return started().s3;
    },
    get dir() {
      return started().dir;
    },
  };
}

/** The embedded MQTT broker on a free loopback port with these secrets; requests are acknowledged and dropped. */
export async function startEmbeddedBroker(tenants: ReadonlyMap<string, string>, platformSecret: string): Promise<EmbeddedBroker> {
  const broker = new EmbeddedBroker();
  await broker.start({ host: '127.0.0.1', port: 0, secrets: { tenants: new Map(tenants), platform: platformSecret }, hooks: { onRequest: () => Promise.resolve(), onRefused: () => undefined } });
  return broker;
}
