import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SqliteWorkQueue } from '@arteria/engine-sqlite';
import { type Lease, type WorkQueue } from '@arteria/ports';
import { workQueueConformance, LONG_VISIBILITY_MS, leaseOne } from '@arteria/testing';

const dir = mkdtempSync(join(tmpdir(), 'arteria-sqlite-queue-'));
let files = 0;
const freshPath = (): string => join(dir, `queue-${++files}.db`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

workQueueConformance('SqliteWorkQueue', {
  create: ({ maxDeliveries }) => Promise.resolve(new SqliteWorkQueue({ path: freshPath(), maxDeliveries, pollIntervalMs: 10 })),
  reopen: async (queue: WorkQueue) => {
    if (!(queue instanceof SqliteWorkQueue)) throw new Error('not a SqliteWorkQueue');
    await queue.close();
    return new SqliteWorkQueue({ ...queue.config });
  },
});

const WORKER = fileURLToPath(new URL('./fixtures/queue-worker.mjs', import.meta.url));

type WorkerMessage =
  | { type: 'ready' }
  | { type: 'leased'; taskIds: string[] }
  | { type: 'done'; acked: string[]; errors: string[] };

function startWorker(args: string[]): ChildProcess {
  return fork(WORKER, args, { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The child's next IPC message; fails if it exits first. */
function nextMessage(child: ChildProcess): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null): void => {
      child.off('message', onMessage);
      reject(new Error(`queue worker exited (code ${code}, signal ${signal}) before answering`));
    };
    const onMessage = (message: unknown): void => {
      child.off('exit', onExit);
      resolve(message as WorkerMessage);
    };
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

describe('SqliteWorkQueue', () => {
  const queues: SqliteWorkQueue[] = [];
  const children: ChildProcess[] = [];
  const open = (options: Partial<ConstructorParameters<typeof SqliteWorkQueue>[0]> = {}): SqliteWorkQueue => {
    const queue = new SqliteWorkQueue({ path: freshPath(), maxDeliveries: 5, pollIntervalMs: 10, ...options });
    queues.push(queue);
    return queue;
  };

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(queues.splice(0).map((queue) => queue.close()));
  });

  describe('options', () => {
    it('applies defaults and freezes the config', () => {
      const queue = open({ pollIntervalMs: undefined });
      expect(queue.config).toMatchObject({ pollIntervalMs: 50, synchronous: 'FULL', dedupeRetentionMs: 86_400_000 });
      expect(Object.isFrozen(queue.config)).toBe(true);
      expect(queue.kind).toBe('sqlite');
    });

    it('rejects unknown keys and out-of-range values with CONFIG_INVALID', () => {
      const path = freshPath();
      expect(() => new SqliteWorkQueue({ path, maxDeliveries: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
      expect(() => new SqliteWorkQueue({ path, maxDeliveries: 3, pollIntervalMs: -1 })).toThrow(/pollIntervalMs/);
      const unknownKey = { path, maxDeliveries: 3, visibilityMs: 10 } as unknown as ConstructorParameters<typeof SqliteWorkQueue>[0];
      expect(() => new SqliteWorkQueue(unknownKey)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    });

    it('reports a file it cannot open as QUEUE_UNAVAILABLE', () => {
      expect(() => new SqliteWorkQueue({ path: join(dir, 'missing', 'dir', 'q.db'), maxDeliveries: 3 })).toThrow(
        expect.objectContaining({ code: 'QUEUE_UNAVAILABLE' }),
      );
    });

    it('works with synchronous NORMAL', async () => {
      const queue = open({ synchronous: 'NORMAL' });
      await queue.enqueue(Buffer.from('x'), { dedupeId: 'x' });
      await queue.ack(await leaseOne(queue));
    });
  });

  describe('dedupe retention', () => {
    it('an acked or dead-lettered task keeps deduping within the retention window', async () => {
      const queue = open();
      const acked = await queue.enqueue(Buffer.from('a'), { dedupeId: 'a' });
      await queue.ack(await leaseOne(queue));
      expect(await queue.enqueue(Buffer.from('a again'), { dedupeId: 'a' })).toEqual({ enqueued: false, taskId: acked.taskId });
      const dead = await queue.enqueue(Buffer.from('b'), { dedupeId: 'b' });
      await queue.deadLetter(await leaseOne(queue), 'poison');
      expect(await queue.enqueue(Buffer.from('b again'), { dedupeId: 'b' })).toEqual({ enqueued: false, taskId: dead.taskId });
      expect((await queue.stats()).ready).toBe(0);
    });

    it('after the retention window the same dedupeId is a new task', async () => {
      const queue = open({ dedupeRetentionMs: 50 });
      const first = await queue.enqueue(Buffer.from('a'), { dedupeId: 'a' });
      await queue.ack(await leaseOne(queue));
      await sleep(80);
      const second = await queue.enqueue(Buffer.from('a again'), { dedupeId: 'a' });
      expect(second.enqueued).toBe(true);
      expect(second.taskId).not.toBe(first.taskId);
      expect((await leaseOne(queue)).payload.toString()).toBe('a again');
    });
  });

  describe('lifecycle', () => {
    it('the last allowed delivery nacked goes to the dead letters at once, not after the delay', async () => {
      const queue = open({ maxDeliveries: 1 });
      await queue.enqueue(Buffer.from('x'), { dedupeId: 'x' });
      await queue.nack(await leaseOne(queue), { delayMs: 60_000, reason: 'storage down' });
      const [letter] = await queue.deadLetters(10);
      expect(letter?.reason).toBe('max deliveries (1) exceeded; last: storage down');
      expect(await queue.stats()).toMatchObject({ delayed: 0, deadLettered: 1 });
    });

    it('after close: lease resolves [], other operations fail with QUEUE_UNAVAILABLE', async () => {
      const queue = open();
      await queue.enqueue(Buffer.from('x'), { dedupeId: 'x' });
      const lease = await leaseOne(queue);
      await queue[Symbol.asyncDispose]();
      expect(await queue.lease({ max: 1, visibilityMs: 1_000, waitMs: 1_000 })).toEqual([]);
      await expect(queue.enqueue(Buffer.from('y'), { dedupeId: 'y' })).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
      await expect(queue.ack(lease)).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
      await expect(queue.stats()).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
    });

    it('enqueue and nack in this process wake a waiting leaser themselves, not its poll timer', async () => {
      // Poll timer and wait both far beyond the test timeout: only the wake-up can answer.
      const queue = open({ pollIntervalMs: 60_000 });
      const waitOne = (): Promise<Lease[]> => queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 60_000 });
      let settled = false;
      const pending = waitOne().finally(() => {
        settled = true;
      });
      await sleep(20);
      expect(settled).toBe(false);
      await queue.enqueue(Buffer.from('now'), { dedupeId: 'now' });
      const [lease] = await pending;
      expect(lease?.payload.toString()).toBe('now');
      const again = waitOne();
      await sleep(20);
      await queue.nack(lease!, { delayMs: 0, reason: 'try again' });
      expect((await again).map((l) => l.deliveries)).toEqual([2]);
    });

    it('an enqueue wakes one waiting leaser per task it added, and leaves the rest asleep', async () => {
      // The poll timer is beyond the test timeout: a task whose leaser was not woken is never taken.
      const queue = open({ pollIntervalMs: 60_000 });
      const taken: string[] = [];
      const waiting = Array.from({ length: 3 }, () =>
        queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 60_000 }).then((leases) => {
          taken.push(...leases.map((l) => l.payload.toString()));
          return leases;
        }),
      );
      await sleep(20);
      // Two tasks in one group commit: two leasers woken, each finds one.
      await Promise.all([queue.enqueue(Buffer.from('a'), { dedupeId: 'a' }), queue.enqueue(Buffer.from('b'), { dedupeId: 'b' })]);
      await sleep(100);
      expect(taken.sort()).toEqual(['a', 'b']);
      // The third still waits, and the next task wakes it.
      await queue.enqueue(Buffer.from('c'), { dedupeId: 'c' });
      const results = await Promise.all(waiting);
      expect(results.map((r) => r.length)).toEqual([1, 1, 1]);
      expect(taken.sort()).toEqual(['a', 'b', 'c']);
    });

    it('a waiting leaser sees a task enqueued by another instance on the same file', async () => {
      const leaser = open();
      const producer = open({ path: leaser.path });
      const pending = leaser.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 10_000 });
      await sleep(20);
      await producer.enqueue(Buffer.from('from elsewhere'), { dedupeId: 'e' });
      expect((await pending).map((l) => l.payload.toString())).toEqual(['from elsewhere']);
    });

    it('one look at the file serves every waiting leaser: a burst from another instance reaches all of them', async () => {
      const leaser = open({ pollIntervalMs: 20 });
      const producer = open({ path: leaser.path });
      // Waits far longer than the test: only the instance's look at the file can answer them.
      const waiting = Array.from({ length: 3 }, () => leaser.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 60_000 }));
      await sleep(50);
      for (const id of ['x', 'y', 'z']) await producer.enqueue(Buffer.from(id), { dedupeId: id });
      const taken = (await Promise.all(waiting)).flat().map((l) => l.payload.toString());
      expect(taken.sort()).toEqual(['x', 'y', 'z']);
    });
  });

  describe('several processes on one file', () => {
    it('a process killed while holding leases loses no task: they are delivered again after the visibility timeout', async () => {
      const queue = open();
      const total = 20;
      for (let i = 0; i < total; i++) await queue.enqueue(Buffer.from(`task ${i}`), { dedupeId: `t${i}` });
      // 3 s leases: the child's report and the stats below come well inside them on a busy
      // machine (with 500 ms they could expire first and show the tasks ready again).
      const child = startWorker(['hold', queue.path, '5', '3000']);
      children.push(child);
      const held = await nextMessage(child);
      if (held.type !== 'leased') throw new Error(`unexpected ${held.type}`);
      expect(held.taskIds).toHaveLength(5);
      expect(await queue.stats()).toMatchObject({ ready: total - 5, inFlight: 5 });

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const deliveries = new Map<string, number>();
      for (let round = 0; round < 100 && deliveries.size < total; round++) {
        for (const lease of await queue.lease({ max: total, visibilityMs: LONG_VISIBILITY_MS, waitMs: 2_000 })) {
          expect(deliveries.has(lease.taskId)).toBe(false);
          deliveries.set(lease.taskId, lease.deliveries);
          await queue.ack(lease);
        }
      }
      expect(deliveries.size).toBe(total);
      for (const [taskId, count] of deliveries) expect(count).toBe(held.taskIds.includes(taskId) ? 2 : 1);
      expect(await queue.stats()).toMatchObject({ ready: 0, inFlight: 0, delayed: 0, deadLettered: 0 });
    });

    it('two processes leasing from one file concurrently never get the same task', async () => {
      const queue = open();
      const workers = [startWorker(['drain', queue.path]), startWorker(['drain', queue.path])];
      children.push(...workers);
      await Promise.all(workers.map(async (w) => expect((await nextMessage(w)).type).toBe('ready')));

      const total = 300;
      for (let i = 0; i < total; i++) {
        await queue.enqueue(Buffer.from(`task ${i}`), { dedupeId: `t${i}` });
        if (i % 20 === 0) await sleep(2);
      }
      for (let i = 0; i < 1_000; i++) {
        const stats = await queue.stats();
        if (stats.ready + stats.inFlight + stats.delayed === 0) break;
        await sleep(20);
      }
      const reports = await Promise.all(
        workers.map((w) => {
          const report = nextMessage(w);
          w.send('stop');
          return report;
        }),
      );
      const acked: string[][] = reports.map((r) => {
        if (r.type !== 'done') throw new Error(`unexpected ${r.type}`);
        expect(r.errors).toEqual([]);
        return r.acked;
      });
      const [first, second] = acked as [string[], string[]];
      expect(first.length).toBeGreaterThan(0);
      expect(second.length).toBeGreaterThan(0);
      expect(first.filter((id) => second.includes(id))).toEqual([]);
      expect(new Set([...first, ...second]).size).toBe(total);
      expect(first.length + second.length).toBe(total);
    });
  });
});

describe('SqliteWorkQueue: oldest age', () => {
  it('counts a task queued for later only once it is due; a task delayed after a delivery counts from its enqueue', async () => {
    const queue = new SqliteWorkQueue({ path: freshPath(), maxDeliveries: 5, pollIntervalMs: 10 });
    try {
      await queue.enqueue(Buffer.from('later'), { dedupeId: 'later', delayMs: 60_000 });
      await sleep(30);
      expect(await queue.stats()).toMatchObject({ delayed: 1, oldestAgeMs: 0 });
      await queue.enqueue(Buffer.from('now'), { dedupeId: 'now' });
      const lease = await leaseOne(queue);
      await queue.nack(lease, { delayMs: 60_000, reason: 'again later' });
      await sleep(30);
      const stats = await queue.stats();
      expect(stats).toMatchObject({ delayed: 2 });
      expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(20);
    } finally {
      await queue.close();
    }
  });
});
