import { describe, expect, it } from 'vitest';
import { SEGMENT_SPANS_ALWAYS, SEGMENT_SPAN_MIN_BYTES, wantsSegmentSpan } from '../src/segmented/segment-spans.js';

// How many spans a segmented run gets (the spans themselves: cli/test/tracing-segmented.e2e.test.ts).
describe('segment spans per run stay bounded', () => {
  const spansOf = (runBytes: number, segmentBytes: number): number => {
    let spans = 0;
    for (let index = 0; index * segmentBytes < runBytes; index++) if (wantsSegmentSpan(index, Math.min(segmentBytes, runBytes - index * segmentBytes))) spans++;
    return spans;
  };

  it('gives the first segments a span each, then only segments of 4 MiB or more', () => {
    expect(wantsSegmentSpan(SEGMENT_SPANS_ALWAYS - 1, 1)).toBe(true);
    expect(wantsSegmentSpan(SEGMENT_SPANS_ALWAYS, SEGMENT_SPAN_MIN_BYTES - 1)).toBe(false);
    expect(wantsSegmentSpan(4000, SEGMENT_SPAN_MIN_BYTES)).toBe(true);
  });

  it('a 2 GB run has 32 spans when cut small, and at most one per 4 MiB when cut large', () => {
    const run = 2 * 10 ** 9;
    expect(spansOf(run, 2 ** 20)).toBe(32); // 1 908 segments of 1 MiB
    expect(spansOf(run, 10 * 2 ** 20)).toBe(191); // all 191 segments of 10 MiB (the last one 7.6 MiB)
    expect(spansOf(run, 10 * 2 ** 20)).toBeLessThanOrEqual(run / SEGMENT_SPAN_MIN_BYTES);
  });
});
