import { describe, expect, it } from 'vitest';
import { UploadSlots } from '../src/upload/upload-slots.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('UploadSlots: the upload slots whole files and segments share', () => {
  it('a whole file takes what is free (all of them when none is in use); a segment waits for a slot a whole file holds', async () => {
    const slots = new UploadSlots(4);
    const whole = slots.tryTake(6); // more than the limit: clamped, and it goes when the uplink is idle
    expect(whole).toBeDefined();
    expect(slots.inUse).toBe(4);
    expect(slots.tryTake(1)).toBeUndefined();
    let segment: (() => void) | undefined;
    const waiting = slots.take(1).then((release) => (segment = release));
    await tick();
    expect(segment).toBeUndefined();
    whole?.();
    await waiting;
    expect(slots.inUse).toBe(1);
    // A whole file of 4 parts does not overtake a waiting segment, and waits for 4 free slots.
    expect(slots.tryTake(4)).toBeUndefined();
    expect(slots.tryTake(3)).toBeDefined();
    segment?.();
    expect(slots.inUse).toBe(3);
  });

  it('serves waiting segments in order, tells the whole-file uploader when slots are freed, and drops a taker that gave up', async () => {
    const slots = new UploadSlots(1);
    const first = slots.tryTake(1);
    const order: string[] = [];
    const gaveUp = new AbortController();
    const a = slots.take(1).then((release) => (order.push('a'), release));
    const b = slots.take(1, gaveUp.signal).then((release) => (order.push('b'), release), () => order.push('b gave up'));
    const c = slots.take(1).then((release) => (order.push('c'), release));
    let freed = 0;
    slots.onFreed(() => (freed += 1));
    gaveUp.abort(new Error('closing'));
    first?.();
    (await a)();
    await b;
    (await c)();
    expect(order.filter((o) => o !== 'b gave up')).toEqual(['a', 'c']);
    expect(order).toContain('b gave up');
    expect(freed).toBe(3);
    expect(slots.inUse).toBe(0);
  });
});
