import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { SqsWorkQueue, type SqsWorkQueueOptions } from '@arteria/engine-sqs';
import { type WorkQueue } from '@arteria/ports';
import { TestSqsServer, workQueueConformance, LONG_VISIBILITY_MS, leaseOne } from '@arteria/testing';

// Every SQS request goes through the AWS SDK (signing, HTTP, JSON): the suite's 300-task
// test needs about 30 s of CPU on a busy 2-core machine. Correctness only is asserted.
vi.setConfig({ testTimeout: 120_000 });

/** One SQS-API server (local-aws-sqs) for the file; each queue gets its own SQS queues and records file. */
const server = await TestSqsServer.start();
const dir = mkdtempSync(join(tmpdir(), 'arteria-sqs-queue-'));
let queues = 0;
const fresh = (maxDeliveries: number, extra: Partial<SqsWorkQueueOptions> = {}): SqsWorkQueueOptions => {
  const n = ++queues;
  // Long polls of 1 s: local-aws-sqs 2.0.2 does not wake a waiting long poll for a message
  // made visible by ChangeMessageVisibility 0 at the same moment (AWS SQS does), so the poll after it finds it.
  return { ...server.clientOptions, name: `q${n}`, recordsPath: join(dir, `records-${n}.db`), maxDeliveries, pollIntervalMs: 100, longPollSeconds: 1, ...extra };
};

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

workQueueConformance('SqsWorkQueue', {
  create: ({ maxDeliveries }) => SqsWorkQueue.open(fresh(maxDeliveries)),
  reopen: async (queue: WorkQueue) => {
    if (!(queue instanceof SqsWorkQueue)) throw new Error('not an SqsWorkQueue');
    await queue.close();
    return SqsWorkQueue.open({ ...queue.config });
  },
  limits: { order: 'a standard SQS queue delivers in about, not exactly, the order sent' },
});

describe('SqsWorkQueue', () => {
  const open: SqsWorkQueue[] = [];
  const start = async (options: SqsWorkQueueOptions): Promise<SqsWorkQueue> => {
    const queue = await SqsWorkQueue.open(options);
    open.push(queue);
    return queue;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((queue) => queue.close()));
  });

  it('applies defaults and freezes the config; rejects unknown keys and half credentials with CONFIG_INVALID', async () => {
    const queue = await start(fresh(3));
    expect(queue.kind).toBe('sqs');
    expect(queue.config).toMatchObject({ longPollSeconds: 1, pollIntervalMs: 100, deadLetterSweepMs: 5_000, recordsSynchronous: 'FULL', dedupeRetentionMs: 86_400_000 });
    expect(Object.isFrozen(queue.config)).toBe(true);
    const bad = [
      { ...fresh(3), visibilityMs: 10 },
      { ...fresh(0) },
      { ...fresh(3), name: 'has.dot' },
      { ...fresh(3), secretAccessKey: '' },
    ];
    for (const options of bad) await expect(SqsWorkQueue.open(options)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('an unreachable endpoint fails open() with QUEUE_UNAVAILABLE naming it', async () => {
    const options = { ...fresh(3), endpoint: 'http://127.0.0.1:1', requestTimeoutMs: 500 };
    await expect(SqsWorkQueue.open(options)).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE', message: expect.stringContaining('127.0.0.1:1') as unknown });
  });

  it('two processes sharing the queue and records file: a lease taken by one is acked by the other, each task once', async () => {
    const options = fresh(3);
    const a = await start(options);
    const b = await start(options);
    const { taskId } = await a.enqueue(Buffer.from('shared'), { dedupeId: 'shared' });
    expect((await b.enqueue(Buffer.from('again'), { dedupeId: 'shared' })).enqueued).toBe(false);
    const lease = await leaseOne(b);
    expect(lease.taskId).toBe(taskId);
    expect(await a.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
    await a.ack(lease);
    expect(await b.pending('shared')).toBe(false);
  });

  it('an enqueue delay longer than SQS allows in one step (15 min) holds the task back without counting a delivery', async () => {
    const queue = await start(fresh(3));
    await queue.enqueue(Buffer.from('much later'), { dedupeId: 'later', delayMs: 20 * 60_000 });
    expect(await queue.lease({ max: 1, visibilityMs: LONG_VISIBILITY_MS, waitMs: 0 })).toEqual([]);
    expect(await queue.stats()).toMatchObject({ ready: 0, delayed: 1 });
    expect(await queue.pending('later')).toBe(true);
  });

  it('counts a task queued for later toward the oldest age only once it is due; one delayed after a delivery from its enqueue', async () => {
    const queue = await start(fresh(5));
    await queue.enqueue(Buffer.from('later'), { dedupeId: 'later', delayMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await queue.stats()).toMatchObject({ delayed: 1, oldestAgeMs: 0 });
    await queue.enqueue(Buffer.from('now'), { dedupeId: 'now' });
    const lease = await leaseOne(queue);
    await queue.nack(lease, { delayMs: 60_000, reason: 'again later' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const stats = await queue.stats();
    expect(stats).toMatchObject({ delayed: 2 });
    expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(20);
  });
});
