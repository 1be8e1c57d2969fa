import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { NatsWorkQueue } from '@arteria/engine-nats';
import { TestNatsServer } from '@arteria/testing';

const server = await TestNatsServer.start();
afterAll(() => server.stop());

/** Settles every task once, whatever the queue's own requests do; errors are what a worker would meet and outlive. */
const tolerated = (err: unknown): boolean => err instanceof ArteriaError && (err.code === 'QUEUE_UNAVAILABLE' || err.code === 'LEASE_LOST');

describe('NatsWorkQueue with requests that time out on the client while the server carries them out', () => {
  it('settles every task: nothing stays stuck among the retries and delays of two processes', async () => {
    const TASKS = 60;
    // 100 ms: on a busy machine many requests outlive this on the client and still take effect on the server.
    const options = { servers: server.url, name: 'STRESS', maxDeliveries: 100, pollIntervalMs: 20, ackWaitMs: 1_000, requestTimeoutMs: 100 };
    const open = async (): Promise<NatsWorkQueue> => {
      for (;;) {
        try {
          return await NatsWorkQueue.open(options);
        } catch (err) {
          if (!tolerated(err)) throw err;
        }
      }
    };
    const queues = [await open(), await open()];
    const acked = new Set<string>();
    for (let i = 0; i < TASKS; i++) {
      for (;;) {
        try {
          await queues[i % 2]?.enqueue(Buffer.from(String(i)), { dedupeId: `task-${i}` });
          break;
        } catch (err) {
          if (!tolerated(err)) throw err;
        }
      }
    }
    let stop = false;
    const loop = async (queue: NatsWorkQueue): Promise<void> => {
      while (!stop) {
        let leases;
        try {
          leases = await queue.lease({ max: 2, visibilityMs: 2_000, waitMs: 200 });
        } catch (err) {
          if (!tolerated(err)) throw err;
          continue;
        }
        for (const lease of leases) {
          try {
            // Each task fails its first four deliveries with a growing delay, like a fetch from a store that is down.
            if (lease.deliveries < 5) await queue.nack(lease, { delayMs: 20 * 2 ** lease.deliveries, reason: 'store down' });
            else {
              await queue.ack(lease);
              acked.add(lease.dedupeId);
            }
          } catch (err) {
            if (!tolerated(err)) throw err;
          }
        }
      }
    };
    const loops = queues.flatMap((q) => [loop(q), loop(q)]);
    try {
      const until = Date.now() + 90_000;
      while (acked.size < TASKS && Date.now() < until) await sleep(200);
      const missing = Array.from({ length: TASKS }, (_, i) => `task-${i}`).filter((id) => !acked.has(id));
      const pending = await Promise.all(missing.map(async (id) => [id, await queues[0]?.pending(id).catch(() => 'unknown')] as const));
      expect(pending).toEqual([]);
    } finally {
      stop = true;
      await Promise.allSettled(loops);
      await Promise.allSettled(queues.map((q) => q.close()));
    }
  }, 120_000);
});
