import { afterAll, describe, expect, it } from 'vitest';
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

describe('NATS worker roster under heartbeats', () => {
  it('every read answers while other workers beat and old beats expire', async () => {
    server ??= await TestNatsServer.start();
    const servers = [server.url];
    // A bucket of its own with a short TTL, and a new worker every beat: keys expire while reads run.
    const reader = await NatsWorkerRoster.open({ servers, bucket: 'ROSTER_CHURN', staleAfterMs: 1_000 });
    const writer = await NatsWorkerRoster.open({ servers, bucket: 'ROSTER_CHURN', staleAfterMs: 1_000 });
    let beating = true;
    const beats = (async () => {
      for (let i = 0; beating; i++) {
        await writer.beat({ instanceId: `worker-${i}`, pool: 'cpu', state: 'running', concurrency: 2, busy: i % 3, at: Date.now() });
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })();
    try {
      const slowest = { ms: 0 };
      const deadline = Date.now() + 6_000;
      while (Date.now() < deadline) {
        const started = Date.now();
        const view = await Promise.race([reader.read(), new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 3_000))]);
        expect(view).not.toBe('stuck');
        slowest.ms = Math.max(slowest.ms, Date.now() - started);
      }
      expect(slowest.ms).toBeLessThan(3_000);
    } finally {
      beating = false;
      await beats;
      await reader.close();
      await writer.close();
    }
  }, 20_000);
});
