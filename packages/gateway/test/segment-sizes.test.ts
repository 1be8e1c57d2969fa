import { describe, expect, it } from 'vitest';
import { MAX_FRAMES_PER_RUN, MAX_SEGMENTS_PER_RUN, MAX_SEGMENT_BYTES } from '@arteria/protocol';
import { nextSegmentFrames } from '../src/segmented/segment-follower.js';

/** Cuts a run of `frames` frames as the follower does when its frames keep coming: the segments it needs. */
function segmentsOf(frames: number, framesPerSegment: number, frameBytes = 1024 * 1024): number[] {
  const cut: number[] = [];
  for (let next = 0; next < frames; ) {
    const count = Math.min(frames - next, nextSegmentFrames(framesPerSegment, cut.length, next, frameBytes));
    cut.push(count);
    next += count;
  }
  return cut;
}

describe('segment sizes of a run sent while it is acquired', () => {
  it('keeps framesPerSegment while under half the segments a run may have', () => {
    expect(segmentsOf(400, 10)).toEqual(Array.from({ length: 40 }, () => 10));
    expect(nextSegmentFrames(10, MAX_SEGMENTS_PER_RUN / 2 - 1, 20_470, 1024)).toBe(10);
  });

  it('never needs more segments than a run may have, up to the most frames a run may have, at 1 or 10 frames a segment', () => {
    for (const framesPerSegment of [1, 10]) {
      const cut = segmentsOf(MAX_FRAMES_PER_RUN, framesPerSegment, 64 * 64);
      expect(cut.length).toBeLessThanOrEqual(MAX_SEGMENTS_PER_RUN);
      expect(cut.reduce((a, b) => a + b, 0)).toBe(MAX_FRAMES_PER_RUN);
    }
    // The default of 10 frames a segment: 41 000 frames (about 23 minutes at 30 fps) needed 4100 segments.
    expect(segmentsOf(41_000, 10, 64 * 64).length).toBeLessThanOrEqual(MAX_SEGMENTS_PER_RUN);
  });

  it('never makes a segment larger than the platform takes', () => {
    const frameBytes = 8 * 1024 * 1024;
    expect(nextSegmentFrames(10, MAX_SEGMENTS_PER_RUN - 10, 1000, frameBytes) * frameBytes).toBeLessThanOrEqual(MAX_SEGMENT_BYTES);
  });
});
