import { describe, expect, it } from 'vitest';
import { StreamFeed, type FeedHooks } from '@arteria/worker';

type TaskMessage = Parameters<FeedHooks['post']>[0];

/** The messages a feed posts to its thread, with what each transfers. */
function recorder(): { posted: Array<{ message: TaskMessage; transferred: number }>; ended: () => boolean; hooks: FeedHooks } {
  const posted: Array<{ message: TaskMessage; transferred: number }> = [];
  let ended = false;
  return {
    posted,
    ended: () => ended,
    hooks: {
      post: (message, transfer) => posted.push({ message, transferred: transfer?.length ?? 0 }),
      waiting: () => undefined,
      ended: () => (ended = true),
    },
  };
}

async function* chunksOf(...parts: number[]): AsyncGenerator<Uint8Array> {
  for (const [i, n] of parts.entries()) yield await Promise.resolve(new Uint8Array(n).fill(i + 1));
}

describe('stream feed', () => {
  it('sends an input read in one chunk as one message: begin with the bytes, ended', async () => {
    const r = recorder();
    await new StreamFeed({ chunks: chunksOf(100), size: 100 }, r.hooks).run(7, true);
    expect(r.posted.map((p) => p.message.type)).toEqual(['begin']);
    const [begin] = r.posted;
    expect(begin?.message).toMatchObject({ type: 'begin', id: 7, size: 100, requireDeidentified: true, ended: true });
    expect(begin?.transferred).toBe(1);
    expect(new Uint8Array((begin?.message as { bytes: ArrayBuffer }).bytes)).toEqual(new Uint8Array(100).fill(1));
    expect(r.ended()).toBe(true);
  });

  it('sends the first chunk with begin, then the other chunks in order and end', async () => {
    const r = recorder();
    await new StreamFeed({ chunks: chunksOf(10, 20, 30), size: 60 }, r.hooks).run(1, false);
    expect(r.posted.map((p) => p.message.type)).toEqual(['begin', 'chunk', 'chunk', 'end']);
    const sizes = r.posted.map((p) => ('bytes' in p.message && p.message.bytes ? p.message.bytes.byteLength : 0));
    expect(sizes).toEqual([10, 20, 30, 0]);
    expect(r.posted[0]?.message).toMatchObject({ ended: false });
    expect(r.posted[3]?.message).toEqual({ type: 'end', id: 1, abandoned: false });
  });

  it('sends an empty input as begin alone, ended, without bytes', async () => {
    const r = recorder();
    await new StreamFeed({ chunks: chunksOf(), size: 0 }, r.hooks).run(2, false);
    expect(r.posted.map((p) => p.message)).toEqual([{ type: 'begin', id: 2, size: 0, requireDeidentified: false, ended: true }]);
  });

  it('still hands the thread the task to drop when the input fails before its first chunk was sent', async () => {
    const r = recorder();
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield await Promise.resolve(new Uint8Array(5));
      throw new Error('checksum');
    }
    const feed = new StreamFeed({ chunks: failing(), size: 10 }, r.hooks);
    await expect(feed.run(3, true)).rejects.toThrow('checksum');
    feed.abandon(3);
    expect(r.posted.map((p) => p.message)).toEqual([
      { type: 'begin', id: 3, size: 10, requireDeidentified: true, ended: false },
      { type: 'end', id: 3, abandoned: true },
    ]);
    expect(r.ended()).toBe(false);
  });
});
