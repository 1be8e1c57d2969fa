import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { NatsWorkQueue, type NatsWorkQueueOptions } from '@arteria/engine-nats';
import { type WorkQueue } from '@arteria/ports';
import { workQueueConformance, LONG_VISIBILITY_MS, leaseOne, TestNatsServer } from '@arteria/testing';

/** One private nats-server for the conformance suite; each queue gets its own streams. */
const server = await TestNatsServer.start();
let queues = 0;
const fresh = (maxDeliveries: number, extra: Partial<NatsWorkQueueOptions> = {}): NatsWorkQueueOptions => ({
  servers: server.url,
  name: `Q${++queues}`,
  maxDeliveries,
  pollIntervalMs: 20,
  ...extra,
});

afterAll(() => server.stop());

workQueueConformance('NatsWorkQueue', {
  create: ({ maxDeliveries }) => NatsWorkQueue.open(fresh(maxDeliveries)),
  reopen: async (queue: WorkQueue) => {
    if (!(queue instanceof NatsWorkQueue)) throw new Error('not a NatsWorkQueue');
    await queue.close();
    return NatsWorkQueue.open({ ...queue.config });
  },
});

/** Retries while the queue reports QUEUE_UNAVAILABLE (a client reconnecting), up to 5 s. */
async function retryUnavailable<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ArteriaError && err.code === 'QUEUE_UNAVAILABLE') || attempt >= 50) throw err;
      await sleep(100);
    }
  }
}

describe('NatsWorkQueue', () => {
  const open: NatsWorkQueue[] = [];
  const start = async (options: NatsWorkQueueOptions): Promise<NatsWorkQueue> => {
    const queue = await NatsWorkQueue.open(options);
    open.push(queue);
    return queue;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((queue) => queue.close()));
  });

  describe('options', () => {
    it('applies defaults, resolves the subject prefix and freezes the config', async () => {
      const queue = await start({ servers: server.url, name: 'DEFAULTS', maxDeliveries: 3 });
      expect(queue.config).toMatchObject({
        ackWaitMs: 30_000,
        pollIntervalMs: 250,
        dedupeRetentionMs: 86_400_000,
        duplicateWindowMs: 120_000,
        storage: 'file',
        replicas: 1,
        subjectPrefix: 'arteria.queue.defaults',
      });
      expect(Object.isFrozen(queue.config)).toBe(true);
      expect(queue.kind).toBe('nats-jetstream');
    });

    it('rejects unknown keys and bad values with CONFIG_INVALID before connecting', async () => {
      const bad = [
        { servers: server.url, maxDeliveries: 0 },
        { servers: server.url, maxDeliveries: 3, name: 'has.dot' },
        { servers: server.url, maxDeliveries: 3, visibilityMs: 10 },
        { servers: server.url, maxDeliveries: 3, duplicateWindowMs: 10_000, dedupeRetentionMs: 5_000 },
      ];
      for (const options of bad) {
        await expect(NatsWorkQueue.open(options as NatsWorkQueueOptions)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      }
    });

    it('reports a server it cannot reach as QUEUE_UNAVAILABLE', async () => {
      const nobody = await TestNatsServer.start();
      const url = nobody.url;
      await nobody.stop();
      const error: unknown = await NatsWorkQueue.open({ servers: url, maxDeliveries: 3 }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ArteriaError);
      expect(error).toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
    });
  });

  describe('dedupe beyond the JetStream duplicate window', () => {
    it('the task record keeps deduping after the window; after its retention the dedupeId is new again', async () => {
      // The window is 1 s on both; records live 60 s on one and 1 s on the other.
      const [kept, expiring] = await Promise.all([
        start(fresh(3, { duplicateWindowMs: 1_000, dedupeRetentionMs: 60_000 })),
        start(fresh(3, { duplicateWindowMs: 1_000, dedupeRetentionMs: 1_000 })),
      ]);
      const firsts = await Promise.all([kept, expiring].map((q) => q.enqueue(Buffer.from('a'), { dedupeId: 'a' })));
      for (const queue of [kept, expiring]) await queue.ack(await leaseOne(queue));
      await sleep(1_300);
      const [again, renewed] = await Promise.all([kept, expiring].map((q) => q.enqueue(Buffer.from('a again'), { dedupeId: 'a' })));
      expect(again).toEqual({ enqueued: false, taskId: firsts[0]!.taskId });
      // The duplicate message published past the window was removed, not left to run.
      expect(await kept.stats()).toMatchObject({ ready: 0, inFlight: 0 });
      expect(await kept.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
      expect(renewed!.enqueued).toBe(true);
      expect(renewed!.taskId).not.toBe(firsts[1]!.taskId);
      expect((await leaseOne(expiring)).payload.toString()).toBe('a again');
    });
  });

  describe('visibility', () => {
    it('a lease longer than the consumer AckWait holds; the task comes back only after the lease', async () => {
      const queue = await start(fresh(3, { ackWaitMs: 400 }));
      await queue.enqueue(Buffer.from('long'), { dedupeId: 'long' });
      const leasedAt = Date.now();
      // A 3 s lease: the 1 s look below ends inside it even when the lease call returns late on a
      // busy machine (with 1.5 s, a lease answered 0.5 s late let the task come back inside the look).
      const first = (await queue.lease({ max: 1, visibilityMs: 3_000, waitMs: 5_000 }))[0]!;
      // Well past AckWait, still inside the lease.
      expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 1_000 })).toEqual([]);
      const second = await leaseOne(queue);
      expect(Date.now() - leasedAt).toBeGreaterThanOrEqual(3_000 - 2);
      expect(second).toMatchObject({ taskId: first.taskId, deliveries: 2 });
    });
  });

  describe('several instances on one stream', () => {
    it('concurrent enqueues of one dedupeId from several instances make one task', async () => {
      const options = fresh(3);
      const instances = await Promise.all([1, 2, 3].map(() => start(options)));
      const results = await Promise.all(
        instances.flatMap((queue, i) => [0, 1].map((j) => queue.enqueue(Buffer.from(`copy ${i}.${j}`), { dedupeId: 'same' }))),
      );
      expect(results.filter((r) => r.enqueued)).toHaveLength(1);
      expect(new Set(results.map((r) => r.taskId)).size).toBe(1);
      expect((await instances[0]!.stats()).ready).toBe(1);
    });

    it('an enqueue through one instance wakes a leaser waiting in another at once, not by polling', async () => {
      const options = fresh(3, { pollIntervalMs: 60_000 });
      const leaser = await start(options);
      const producer = await start(options);
      const pending = leaser.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 60_000 });
      await sleep(30);
      await producer.enqueue(Buffer.from('from elsewhere'), { dedupeId: 'e' });
      expect((await pending).map((l) => l.payload.toString())).toEqual(['from elsewhere']);
    });

    it('a lease taken in one instance is acked through another; the stale one is refused there too', async () => {
      const options = fresh(3);
      const first = await start(options);
      const second = await start(options);
      await first.enqueue(Buffer.from('x'), { dedupeId: 'x' });
      const stale = (await first.lease({ max: 1, visibilityMs: 100, waitMs: 5_000 }))[0]!;
      const current = await leaseOne(second);
      expect(current.deliveries).toBe(2);
      await expect(second.ack(stale)).rejects.toMatchObject({ code: 'LEASE_LOST' });
      await first.ack(current);
      expect(await second.stats()).toMatchObject({ ready: 0, inFlight: 0 });
    });
  });

  describe('a nats-server killed while tasks are enqueued and leased', () => {
    it('loses no task: after a restart on the same store every task is delivered, the leased ones again', async () => {
      const crashing = await TestNatsServer.start();
      try {
        // After a restart the server times leases from AckWait again (a lease's own visibility is not kept).
        const options = { servers: crashing.url, name: 'CRASH', maxDeliveries: 5, pollIntervalMs: 20, requestTimeoutMs: 1_000, ackWaitMs: 2_000 };
        const before = await start(options);
        const total = 30;
        const ids = new Set<string>();
        const enqueue = async (from: number, to: number): Promise<void> => {
          for (let i = from; i < to; i++) ids.add((await before.enqueue(Buffer.from(`task ${i}`), { dedupeId: `t${i}` })).taskId);
        };
        await enqueue(0, 25);
        const held = await before.lease({ max: 5, visibilityMs: 500, waitMs: 1_000 });
        expect(held).toHaveLength(5);
        // The last ones are acknowledged to the producer just before the crash.
        await enqueue(25, total);
        await crashing.kill('SIGKILL');
        await crashing.start();

        const after = await start(options);
        const deliveries = new Map<string, number>();
        for (let round = 0; round < 15 && deliveries.size < total; round++) {
          for (const lease of await after.lease({ max: total, visibilityMs: LONG_VISIBILITY_MS, waitMs: 1_000 })) {
            expect(deliveries.has(lease.taskId)).toBe(false);
            deliveries.set(lease.taskId, lease.deliveries);
            await after.ack(lease);
          }
        }
        expect(new Set(deliveries.keys())).toEqual(ids);
        const heldIds = new Set(held.map((l) => l.taskId));
        for (const [taskId, count] of deliveries) expect(count).toBe(heldIds.has(taskId) ? 2 : 1);
        expect(await after.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0 });
        // Dedupe records survived too: a resend of an acked task is still a duplicate.
        expect((await after.enqueue(Buffer.from('resend'), { dedupeId: 't0' })).enqueued).toBe(false);
        // The instance that lived through the crash reconnects and works again.
        const late = await retryUnavailable(() => before.enqueue(Buffer.from('after the crash'), { dedupeId: 'late' }));
        expect(late.enqueued).toBe(true);
        expect((await leaseOne(after)).payload.toString()).toBe('after the crash');
      } finally {
        await crashing.stop();
      }
    });
  });
});
