import { describe, expect, it } from 'vitest';
import { SegmentBuffers } from '../src/segmented/segment-buffers.js';

describe("a run's segment memory, used again from one segment to the next", () => {
  it('gives a stored segment\'s memory to the next cut, as a view of the length asked for', () => {
    const buffers = new SegmentBuffers(2);
    const first = buffers.take(1000);
    expect(first.length).toBe(1000);
    buffers.give(first);
    const second = buffers.take(600); // the last segment of a run is shorter
    expect(second.length).toBe(600);
    expect(second.buffer).toBe(first.buffer);
    buffers.give(second);
    expect(buffers.take(1000).buffer).toBe(first.buffer); // the whole allocation came back, not the view
  });

  it('takes fresh memory when no spare one is large enough, and keeps at most its limit of spares', () => {
    const buffers = new SegmentBuffers(1);
    const small = buffers.take(100);
    buffers.give(small);
    const large = buffers.take(200);
    expect(large.buffer).not.toBe(small.buffer);
    const other = buffers.take(200);
    buffers.give(large);
    buffers.give(other); // over the limit: let go
    expect(buffers.take(200).buffer).toBe(large.buffer);
    expect(buffers.take(200).buffer).not.toBe(other.buffer);
  });

  it("never takes memory it did not allocate (a small Buffer shares Node's pool with others)", () => {
    const buffers = new SegmentBuffers(4);
    const pooled = Buffer.allocUnsafe(64);
    buffers.give(pooled);
    const taken = buffers.take(64);
    expect(taken.buffer).not.toBe(pooled.buffer);
    expect(taken.byteOffset).toBe(0);
    expect(taken.buffer.byteLength).toBe(64); // an allocation of its own
  });
});
