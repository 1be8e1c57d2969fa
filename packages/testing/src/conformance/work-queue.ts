import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lease, WorkQueue } from '@arteria/ports';

/**
 * The WorkQueue conformance suite: every adapter (SQLite, NATS JetStream, ...) must pass
 * it unchanged. Visibility timeouts are short so the suite runs in seconds; no assertion
 * is about how fast something happened, only about what happened (and, for delays, that
 * it did not happen too early).
 */
export interface WorkQueueHarness {
  create(options: { maxDeliveries: number }): Promise<WorkQueue>;
  /** Closes `queue` and opens the same store again; enables the durability tests. */
  reopen?(queue: WorkQueue): Promise<WorkQueue>;
  /**
   * Guarantees the engine does not give, each with the reason: their tests are skipped
   * for this adapter (and named so in the report), never loosened for the others.
   */
  limits?: {
    /** Tasks are not leased in enqueue order. */
    order?: string;
  };
}

/** Long enough that a test never sees it run out unless it waits for that on purpose. */
const LONG_VISIBILITY_MS = 30_000;
/** Upper bound for a long poll that must be woken early; reaching it fails the test. */
const LONG_WAIT_MS = 10_000;

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');
const text = (lease: Lease): string => lease.payload.toString('utf8');

export function workQueueConformance(name: string, harness: WorkQueueHarness): void {
  describe(`WorkQueue conformance: ${name}`, () => {
    const open: WorkQueue[] = [];
    const create = async (maxDeliveries = 5): Promise<WorkQueue> => {
      const queue = await harness.create({ maxDeliveries });
      open.push(queue);
      return queue;
    };
    /** Leases exactly one task, waiting for it as long as needed (bounded by LONG_WAIT_MS). */
    const leaseOne = async (queue: WorkQueue, visibilityMs = LONG_VISIBILITY_MS): Promise<Lease> => {
      const leases = await queue.lease({ max: 1, visibilityMs, waitMs: LONG_WAIT_MS });
      expect(leases).toHaveLength(1);
      return leases[0]!;
    };

    afterEach(async () => {
      await Promise.all(open.splice(0).map((queue) => queue.close()));
    });

    describe('basics', () => {
      it('enqueue, lease, ack: the task is delivered once with its payload and metadata', async () => {
        const queue = await create();
        const before = Date.now();
        const { enqueued, taskId } = await queue.enqueue(bytes('hello'), { dedupeId: 'a' });
        expect(enqueued).toBe(true);
        const lease = await leaseOne(queue);
        expect(lease).toMatchObject({ taskId, dedupeId: 'a', deliveries: 1 });
        expect(text(lease)).toBe('hello');
        expect(lease.enqueuedAt).toBeGreaterThanOrEqual(before - 1);
        await queue.ack(lease);
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
        expect(await queue.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0, oldestAgeMs: 0 });
      });

      it('dedupes: the same dedupeId twice is one task', async () => {
        const queue = await create();
        const first = await queue.enqueue(bytes('one'), { dedupeId: 'same' });
        const second = await queue.enqueue(bytes('two'), { dedupeId: 'same' });
        expect(first.enqueued).toBe(true);
        expect(second).toEqual({ enqueued: false, taskId: first.taskId });
        expect((await queue.stats()).ready).toBe(1);
        const lease = await leaseOne(queue);
        expect(text(lease)).toBe('one');
        // Still deduped while the task is in flight.
        expect((await queue.enqueue(bytes('three'), { dedupeId: 'same' })).enqueued).toBe(false);
        await queue.ack(lease);
      });

      it('pending: true from enqueue through lease and delay until ack or dead letter, false for unknown ids', async () => {
        const queue = await create();
        expect(await queue.pending('never')).toBe(false);
        await queue.enqueue(bytes('one'), { dedupeId: 'p1' });
        await queue.enqueue(bytes('two'), { dedupeId: 'p2' });
        await queue.enqueue(bytes('later'), { dedupeId: 'p3', delayMs: 60_000 });
        expect(await queue.pending('p1')).toBe(true);
        expect(await queue.pending('p3')).toBe(true);
        const first = await leaseOne(queue);
        expect(await queue.pending(first.dedupeId)).toBe(true);
        await queue.ack(first);
        expect(await queue.pending(first.dedupeId)).toBe(false);
        const second = await leaseOne(queue);
        await queue.deadLetter(second, 'poison');
        expect(await queue.pending(second.dedupeId)).toBe(false);
      });

      const orderLimit = harness.limits?.order;
      it.skipIf(orderLimit !== undefined)(`leases ready tasks in enqueue order, at most \`max\` at a time${orderLimit === undefined ? '' : ` (order skipped: ${orderLimit})`}`, async () => {
        const queue = await create();
        for (const id of ['t1', 't2', 't3', 't4', 't5']) await queue.enqueue(bytes(id), { dedupeId: id });
        const firstTwo = await queue.lease({ max: 2, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 });
        expect(firstTwo.map(text)).toEqual(['t1', 't2']);
        const rest = await queue.lease({ max: 10, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 });
        expect(rest.map(text)).toEqual(['t3', 't4', 't5']);
        expect(new Set([...firstTwo, ...rest].map((l) => l.taskId)).size).toBe(5);
      });

      it.runIf(orderLimit !== undefined)('leases ready tasks at most `max` at a time, each once (an engine without order)', async () => {
        const queue = await create();
        for (const id of ['t1', 't2', 't3', 't4', 't5']) await queue.enqueue(bytes(id), { dedupeId: id });
        const firstTwo = await queue.lease({ max: 2, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 });
        expect(firstTwo).toHaveLength(2);
        const rest = await queue.lease({ max: 10, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 });
        expect([...firstTwo, ...rest].map(text).sort()).toEqual(['t1', 't2', 't3', 't4', 't5']);
      });

      it('stats count ready, in-flight, delayed and dead-lettered tasks and the oldest age', async () => {
        const queue = await create();
        expect(await queue.stats()).toEqual({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0, oldestAgeMs: 0 });
        await queue.enqueue(bytes('a'), { dedupeId: 'a' });
        await queue.enqueue(bytes('b'), { dedupeId: 'b' });
        await queue.enqueue(bytes('c'), { dedupeId: 'c' });
        await queue.enqueue(bytes('later'), { dedupeId: 'later', delayMs: 60_000 });
        const [a, b] = await queue.lease({ max: 2, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 });
        await sleep(30);
        const stats = await queue.stats();
        expect(stats).toMatchObject({ ready: 1, inFlight: 2, delayed: 1, deadLettered: 0 });
        expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(20);
        await queue.deadLetter(a!, 'poison');
        await queue.ack(b!);
        expect(await queue.stats()).toMatchObject({ ready: 1, inFlight: 0, delayed: 1, deadLettered: 1 });
      });
    });

    describe('long poll', () => {
      it('a waiting lease returns the task as soon as one is enqueued', async () => {
        const queue = await create();
        let settled = false;
        const pending = queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: LONG_WAIT_MS }).finally(() => {
          settled = true;
        });
        await sleep(30);
        expect(settled).toBe(false);
        await queue.enqueue(bytes('wake'), { dedupeId: 'wake' });
        const leases = await pending;
        expect(leases.map(text)).toEqual(['wake']);
      });

      it('waitMs 0 on an empty queue returns [] without waiting', async () => {
        const queue = await create();
        let longSettled = false;
        const long = queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: LONG_WAIT_MS }).finally(() => {
          longSettled = true;
        });
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
        // It did not wait like a long poll: the one started before it is still waiting.
        expect(longSettled).toBe(false);
        await queue.close();
        expect(await long).toEqual([]);
      });

      it('waitMs runs out with [] when nothing arrives', async () => {
        const queue = await create();
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 100 })).toEqual([]);
      });

      it('aborting the signal ends a waiting lease with [] and leases nothing', async () => {
        const queue = await create();
        const controller = new AbortController();
        const pending = queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: LONG_WAIT_MS, signal: controller.signal });
        await sleep(20);
        controller.abort();
        expect(await pending).toEqual([]);
        await queue.enqueue(bytes('x'), { dedupeId: 'x' });
        expect((await queue.stats()).ready).toBe(1);
      });

      it('close() resolves pending leases with [] and is idempotent', async () => {
        const queue = await create();
        const pending = [1, 2, 3].map(() => queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: LONG_WAIT_MS }));
        await sleep(20);
        await Promise.all([queue.close(), queue.close()]);
        await queue.close();
        expect(await Promise.all(pending)).toEqual([[], [], []]);
      });

      it('close() is memoised; a closed queue refuses work as unavailable (retryable), the cause naming the misuse', async () => {
        const queue = await create();
        const closing = queue.close();
        expect(queue.close()).toBe(closing);
        await closing;
        const error = await queue.enqueue(bytes('late'), { dedupeId: 'late' }).then(() => undefined, (e: unknown) => e);
        expect(error).toMatchObject({ code: 'QUEUE_UNAVAILABLE', cause: { code: 'ILLEGAL_STATE' } });
      });
    });

    describe('visibility and redelivery', () => {
      it('an unacked lease expires and the task is delivered again with deliveries 2', async () => {
        const queue = await create();
        const { taskId } = await queue.enqueue(bytes('slow'), { dedupeId: 'slow' });
        const leasedFrom = Date.now();
        const first = await leaseOne(queue, 150);
        const second = await leaseOne(queue);
        expect(Date.now() - leasedFrom).toBeGreaterThanOrEqual(150 - 2);
        expect(second).toMatchObject({ taskId, dedupeId: 'slow', deliveries: 2 });
        expect(text(second)).toBe('slow');
        expect(second.token).not.toBe(first.token);
        await queue.ack(second);
      });

      it('extend keeps a lease from expiring; the original lease still acks', async () => {
        const queue = await create();
        await queue.enqueue(bytes('long job'), { dedupeId: 'long' });
        // A 1 s lease, extended at once, then a 1.5 s look past where it would have ended: with a
        // 150 ms lease, a busy machine could return the lease call after it had already expired.
        const lease = await leaseOne(queue, 1_000);
        await queue.extend(lease, LONG_VISIBILITY_MS);
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 1_500 })).toEqual([]);
        expect((await queue.stats()).inFlight).toBe(1);
        await queue.ack(lease);
        expect((await queue.stats()).inFlight).toBe(0);
      });

      it('nack with a delay: not visible before the delay, delivered again after it', async () => {
        const queue = await create();
        await queue.enqueue(bytes('retry me'), { dedupeId: 'retry' });
        const first = await leaseOne(queue);
        const nackedAt = Date.now();
        // 2 s: the look and the stats below come well inside the delay even on a busy machine.
        await queue.nack(first, { delayMs: 2_000, reason: 'storage busy' });
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
        expect((await queue.stats()).delayed).toBe(1);
        const second = await leaseOne(queue);
        expect(Date.now() - nackedAt).toBeGreaterThanOrEqual(2_000 - 2);
        expect(second).toMatchObject({ taskId: first.taskId, deliveries: 2 });
        await queue.ack(second);
      });

      it('an enqueue delay holds the task back', async () => {
        const queue = await create();
        const enqueuedAt = Date.now();
        // 1.5 s: the look below comes well inside the delay even on a busy machine.
        await queue.enqueue(bytes('later'), { dedupeId: 'later', delayMs: 1_500 });
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
        const lease = await leaseOne(queue);
        expect(Date.now() - enqueuedAt).toBeGreaterThanOrEqual(1_500 - 2);
        expect(lease.deliveries).toBe(1);
      });
    });

    describe('dead letters', () => {
      it('after maxDeliveries nacks the task is dead-lettered with the reason', async () => {
        const queue = await create(2);
        const { taskId } = await queue.enqueue(bytes('poison'), { dedupeId: 'p' });
        const first = await leaseOne(queue);
        await queue.nack(first, { delayMs: 0, reason: 'boom 1' });
        const second = await leaseOne(queue);
        expect(second.deliveries).toBe(2);
        await queue.nack(second, { delayMs: 0, reason: 'boom 2' });
        expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 100 })).toEqual([]);
        const letters = await queue.deadLetters(10);
        expect(letters).toHaveLength(1);
        expect(letters[0]).toMatchObject({ taskId, dedupeId: 'p', deliveries: 2 });
        expect(letters[0]!.payload.toString('utf8')).toBe('poison');
        expect(letters[0]!.reason).toContain('max deliveries (2) exceeded');
        expect(letters[0]!.reason).toContain('boom 2');
        expect(await queue.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 1 });
      });

      it('a task whose leases keep expiring is dead-lettered after maxDeliveries', async () => {
        const queue = await create(1);
        await queue.enqueue(bytes('hangs'), { dedupeId: 'h' });
        const only = await leaseOne(queue, 100);
        expect(only.deliveries).toBe(1);
        // Keep polling (as a worker would) until the adapter has moved it.
        for (let i = 0; i < 50 && (await queue.deadLetters(1)).length === 0; i++) {
          expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 100 })).toEqual([]);
        }
        const [letter] = await queue.deadLetters(10);
        expect(letter).toMatchObject({ taskId: only.taskId, deliveries: 1 });
        expect(letter!.reason).toContain('max deliveries (1) exceeded');
        await expect(queue.ack(only)).rejects.toMatchObject({ code: 'LEASE_LOST' });
      });

      it('deadLetter() moves a leased task at once with the given reason', async () => {
        const queue = await create();
        const { taskId } = await queue.enqueue(bytes('bad input'), { dedupeId: 'bad' });
        const lease = await leaseOne(queue);
        await queue.deadLetter(lease, 'undecodable task');
        const letters = await queue.deadLetters(10);
        expect(letters).toHaveLength(1);
        expect(letters[0]).toMatchObject({ taskId, dedupeId: 'bad', deliveries: 1, reason: 'undecodable task' });
        expect(letters[0]!.at).toBeGreaterThan(0);
        expect(await queue.stats()).toMatchObject({ ready: 0, inFlight: 0, deadLettered: 1 });
        await expect(queue.ack(lease)).rejects.toMatchObject({ code: 'LEASE_LOST' });
      });

      it('findDeadLetter() and removeDeadLetter() name one letter by task id; a removed letter is gone', async () => {
        const queue = await create();
        const before = Date.now();
        const kept = await queue.enqueue(bytes('kept'), { dedupeId: 'k' });
        const gone = await queue.enqueue(bytes('gone'), { dedupeId: 'g' });
        await queue.deadLetter(await leaseOne(queue), 'first');
        await queue.deadLetter(await leaseOne(queue), 'second');
        const found = await queue.findDeadLetter(gone.taskId);
        expect(found).toMatchObject({ taskId: gone.taskId, dedupeId: 'g', deliveries: 1, reason: 'second' });
        expect(found!.payload.toString('utf8')).toBe('gone');
        expect(found!.enqueuedAt).toBeGreaterThanOrEqual(before);
        expect(found!.at).toBeGreaterThanOrEqual(found!.enqueuedAt);
        expect(await queue.findDeadLetter('999999')).toBeUndefined();
        expect(await queue.findDeadLetter('not-a-task')).toBeUndefined();
        expect(await queue.removeDeadLetter(gone.taskId)).toBe(true);
        expect(await queue.removeDeadLetter(gone.taskId)).toBe(false);
        expect(await queue.findDeadLetter(gone.taskId)).toBeUndefined();
        expect((await queue.deadLetters(10)).map((d) => d.taskId)).toEqual([kept.taskId]);
        expect(await queue.stats()).toMatchObject({ deadLettered: 1 });
      });
    });

    describe('lease ownership', () => {
      it('a stale token fails with LEASE_LOST once the task was leased again; the new holder wins', async () => {
        const queue = await create();
        await queue.enqueue(bytes('contested'), { dedupeId: 'c' });
        const stale = await leaseOne(queue, 100);
        const current = await leaseOne(queue);
        expect(current.deliveries).toBe(2);
        await expect(queue.ack(stale)).rejects.toMatchObject({ code: 'LEASE_LOST' });
        await expect(queue.extend(stale, 1_000)).rejects.toMatchObject({ code: 'LEASE_LOST' });
        await expect(queue.nack(stale, { delayMs: 0, reason: 'late' })).rejects.toMatchObject({ code: 'LEASE_LOST' });
        await expect(queue.deadLetter(stale, 'late')).rejects.toMatchObject({ code: 'LEASE_LOST' });
        await queue.ack(current);
        await expect(queue.ack(current)).rejects.toMatchObject({ code: 'LEASE_LOST' });
        expect(await queue.deadLetters(10)).toEqual([]);
      });

      it('many concurrent leasers: every task is delivered and acked exactly once', async () => {
        const queue = await create();
        const total = 300;
        const seen = new Map<string, number>();
        let acked = 0;
        let failed = false;
        const leaser = async (): Promise<void> => {
          while (acked < total && !failed) {
            const leases = await queue.lease({ max: 4, visibilityMs: LONG_VISIBILITY_MS, waitMs: 50 });
            for (const lease of leases) {
              seen.set(lease.taskId, (seen.get(lease.taskId) ?? 0) + 1);
              expect(lease.deliveries).toBe(1);
              await queue.ack(lease);
              acked++;
            }
          }
        };
        const producer = async (): Promise<void> => {
          for (let i = 0; i < total; i++) {
            const { enqueued } = await queue.enqueue(bytes(`task ${i}`), { dedupeId: `task-${i}` });
            expect(enqueued).toBe(true);
            if (i % 25 === 0) await sleep(1); // let leasers drain and wait again
          }
        };
        const stopOnFailure = (run: () => Promise<void>) => async (): Promise<void> => {
          try {
            await run();
          } catch (err) {
            failed = true; // stop the other loops, then report
            throw err;
          }
        };
        await Promise.all([stopOnFailure(producer)(), ...Array.from({ length: 8 }, stopOnFailure(leaser))]);
        expect(seen.size).toBe(total);
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        expect(await queue.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0 });
      });
    });

    const reopen = harness.reopen?.bind(harness);
    describe.runIf(reopen !== undefined)('durability across close and reopen', () => {
      it('ready and in-flight tasks survive; the in-flight one comes back after its visibility', async () => {
        const queue = await create();
        await queue.enqueue(bytes('done'), { dedupeId: 'done' });
        await queue.ack(await leaseOne(queue));
        const a = await queue.enqueue(bytes('in flight'), { dedupeId: 'a' });
        const b = await queue.enqueue(bytes('ready'), { dedupeId: 'b' });
        const leasedFrom = Date.now();
        const inFlight = await leaseOne(queue, 300);
        expect(inFlight.taskId).toBe(a.taskId);

        const again = await reopen!(queue);
        open.push(again);
        const [ready, ...none] = await again.lease({ max: 5, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 });
        expect(none).toEqual([]);
        expect(ready).toMatchObject({ taskId: b.taskId, deliveries: 1 });
        expect(ready!.payload.toString('utf8')).toBe('ready');
        await again.ack(ready!);

        const redelivered = await leaseOne(again);
        expect(Date.now() - leasedFrom).toBeGreaterThanOrEqual(300 - 2);
        expect(redelivered).toMatchObject({ taskId: a.taskId, dedupeId: 'a', deliveries: 2 });
        expect(redelivered.payload.toString('utf8')).toBe('in flight');
        await expect(again.ack(inFlight)).rejects.toMatchObject({ code: 'LEASE_LOST' });
        await again.ack(redelivered);
        expect(await again.lease({ max: 5, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
        expect(await again.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0 });
      });

      it('dead letters survive a reopen', async () => {
        const queue = await create();
        await queue.enqueue(bytes('poison'), { dedupeId: 'p' });
        await queue.deadLetter(await leaseOne(queue), 'undecodable task');
        const again = await reopen!(queue);
        open.push(again);
        expect((await again.deadLetters(10)).map((d) => d.reason)).toEqual(['undecodable task']);
        expect((await again.stats()).deadLettered).toBe(1);
      });
    });
  });
}
