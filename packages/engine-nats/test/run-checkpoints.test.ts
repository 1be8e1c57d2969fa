import { afterAll } from 'vitest';
import { NatsRunCheckpoints } from '@arteria/engine-nats';
import { TestNatsServer, runCheckpointStoreConformance, startEmbeddedStore, type RunningStore } from '@arteria/testing';

let server: TestNatsServer | undefined;
let store: RunningStore | undefined;
// Connections of their own to one key-value bucket and one S3-API bucket, as workers on
// several machines share them; a small inline limit, so states go both ways (inline and object).
runCheckpointStoreConformance('NATS JetStream key-value with states in an S3-API bucket', async () => {
  server ??= await TestNatsServer.start();
  store ??= await startEmbeddedStore(['arteria-runs']);
  return NatsRunCheckpoints.open({ servers: [server.url], objects: store.bucket('arteria-runs'), inlineStateBytes: 64 * 1024 });
});
afterAll(async () => {
  await server?.stop();
  await store?.close();
});
