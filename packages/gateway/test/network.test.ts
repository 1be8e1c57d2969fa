import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BandwidthLimiter, Outbox } from '@arteria/gateway';

describe('upload bandwidth cap', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets one second of the rate through at once, then paces bytes to the rate, and follows rate changes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new BandwidthLimiter(1000);
    await limiter.take(1000); // the initial burst
    let done = false;
    const next = limiter.take(500).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(400);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(150);
    await next;
    expect(done).toBe(true);
    limiter.setRate(undefined); // uncapped: no waiting at all
    await limiter.take(10_000_000);
    expect(() => limiter.setRate(0)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
  });

  it('serves waiters in the order they asked: a small request never overtakes a larger one before it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new BandwidthLimiter(1000);
    await limiter.take(1000); // the initial burst
    const order: string[] = [];
    // Alone, the second request would fit after 100 ms and the first only after a second.
    const first = limiter.take(1000).then(() => order.push('first'));
    const second = limiter.take(100).then(() => order.push('second'));
    await vi.advanceTimersByTimeAsync(500);
    expect(order).toEqual([]);
    await vi.advanceTimersByTimeAsync(700);
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
  });

  it('lets the next waiter go when one in the line is aborted', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new BandwidthLimiter(1000);
    await limiter.take(1000);
    const controller = new AbortController();
    const ahead = limiter.take(1000, controller.signal);
    let served = false;
    const behind = limiter.take(500).then(() => (served = true));
    controller.abort(new Error('closing'));
    await expect(ahead).rejects.toThrow('closing');
    // The aborted request took nothing: the one behind it goes after 500 ms, not 1500.
    await vi.advanceTimersByTimeAsync(600);
    await behind;
    expect(served).toBe(true);
  });

  it('stops waiting when the upload is aborted', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const limiter = new BandwidthLimiter(100);
    await limiter.take(100);
    const controller = new AbortController();
    const waiting = limiter.take(100, controller.signal);
    controller.abort(new Error('closing'));
    await expect(waiting).rejects.toThrow('closing');
  });

  it('holds one abort listener per signal however many waiters share it, and none once they are served', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const warnings: Error[] = [];
    const onWarning = (warning: Error): number => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const limiter = new BandwidthLimiter(1000);
      await limiter.take(1000);
      const served = new AbortController();
      const added = vi.spyOn(served.signal, 'addEventListener');
      const removed = vi.spyOn(served.signal, 'removeEventListener');
      // The parts of one upload under its one signal, each waiting for its slice.
      const parts = Array.from({ length: 40 }, () => limiter.take(100, served.signal));
      await vi.advanceTimersByTimeAsync(4100);
      await Promise.all(parts);
      expect(added.mock.calls.length).toBe(removed.mock.calls.length); // none left behind
      // Aborted while 40 wait: every one of them hears it.
      const aborted = new AbortController();
      const waiting = Array.from({ length: 40 }, () => limiter.take(100, aborted.signal));
      aborted.abort(new Error('closing'));
      const outcomes = await Promise.allSettled(waiting);
      expect(outcomes.map((o) => o.status)).toEqual(waiting.map(() => 'rejected'));
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('upload priorities', () => {
  it('uploads clinical runs before bulk runs, oldest first within a priority', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arteria-priority-'));
    const outbox = Outbox.open(join(dir, 'outbox.sqlite'), { maxEntries: 10, keepFinishedEntries: 10 });
    try {
      const add = (id: string, priority: 'clinical' | 'bulk'): void => {
        outbox.add({ id, sourcePath: `/runs/${id}.dcm`, spooled: false, algorithm: 'a@1', instanceUid: '1.2.3', objectKey: `k/${id}`, priority, deadline: undefined, acquiredAt: 0 }, 0);
      };
      add('bulk-1', 'bulk');
      add('clinical-1', 'clinical');
      add('clinical-2', 'clinical');
      const order: string[] = [];
      const busy = new Set<string>();
      for (let entry = outbox.nextPending(1, busy); entry !== undefined; entry = outbox.nextPending(1, busy)) {
        order.push(entry.id);
        busy.add(entry.id);
      }
      expect(order).toEqual(['clinical-1', 'clinical-2', 'bulk-1']);
      // Entries being uploaded stay pending; the uploader's next wake-up leaves them out (else it would spin).
      expect(outbox.nextPendingDueAt()).toBe(0);
      expect(outbox.nextPendingDueAt(new Set(['bulk-1', 'clinical-1']))).toBe(0);
      expect(outbox.nextPendingDueAt(busy)).toBeUndefined();
    } finally {
      outbox.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
