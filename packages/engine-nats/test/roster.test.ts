import { afterAll } from 'vitest';
import { NatsWorkerRoster } from '@arteria/engine-nats';
import { TestNatsServer, workerRosterConformance } from '@arteria/testing';

let server: TestNatsServer | undefined;
// Two connections to one JetStream key-value bucket, as roles on several machines share it.
workerRosterConformance('NATS JetStream key-value (two connections)', async () => {
  server ??= await TestNatsServer.start();
  return NatsWorkerRoster.open({ servers: [server.url] });
});
afterAll(async () => {
  await server?.stop();
});
