import { describe, expect, it } from 'vitest';
import { eventF1, eventF1Interval, intervalIou, quantile, scoreRun, type RunCounts } from '../train/metrics.js';

describe('evaluation metrics', () => {
  it('measures frame-interval IoU with inclusive ends', () => {
    expect(intervalIou({ startFrame: 0, endFrame: 9 }, { startFrame: 0, endFrame: 9 })).toBe(1);
    expect(intervalIou({ startFrame: 0, endFrame: 9 }, { startFrame: 5, endFrame: 14 })).toBeCloseTo(5 / 15, 6);
    expect(intervalIou({ startFrame: 0, endFrame: 4 }, { startFrame: 5, endFrame: 9 })).toBe(0);
  });

  it('matches one to one at IoU >= 0.5 and counts misses, false events and edge errors', () => {
    const truth = [
      { startFrame: 10, endFrame: 20 },
      { startFrame: 40, endFrame: 50 },
    ];
    const predicted = [
      { startFrame: 11, endFrame: 22 },
      { startFrame: 12, endFrame: 19 },
      { startFrame: 60, endFrame: 70 },
    ];
    expect(scoreRun(truth, predicted)).toEqual({ truePositives: 1, falsePositives: 2, falseNegatives: 1, onsetErrors: [1], offsetErrors: [2] });
    expect(scoreRun([], [])).toEqual({ truePositives: 0, falsePositives: 0, falseNegatives: 0, onsetErrors: [], offsetErrors: [] });
  });

  it('takes quantiles of sorted values', () => {
    expect(quantile([5, 1, 3], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(10);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('sums event counts into one F1, and bounds it by a bootstrap over runs that repeats and narrows with more runs', () => {
    const hit: RunCounts = { truePositives: 1, falsePositives: 0, falseNegatives: 0 };
    const miss: RunCounts = { truePositives: 0, falsePositives: 0, falseNegatives: 1 };
    const falseEvent: RunCounts = { truePositives: 0, falsePositives: 1, falseNegatives: 0 };
    const empty: RunCounts = { truePositives: 0, falsePositives: 0, falseNegatives: 0 };
    expect(eventF1([hit, hit, hit, miss, falseEvent])).toBeCloseTo(6 / 8, 12);
    expect(eventF1([empty])).toBe(1);
    // Runs that all score alike: no spread.
    expect(eventF1Interval([hit, hit, hit])).toEqual([1, 1]);
    const few = [hit, hit, hit, miss, falseEvent, empty];
    const many = Array.from({ length: 20 }, () => few).flat();
    const [lo, hi] = eventF1Interval(few);
    expect(lo).toBeLessThan(eventF1(few));
    expect(hi).toBeGreaterThan(eventF1(few));
    expect(eventF1Interval(few)).toEqual([lo, hi]);
    const [manyLo, manyHi] = eventF1Interval(many);
    expect(manyLo).toBeGreaterThan(lo);
    expect(manyHi).toBeLessThan(hi);
    expect(manyLo).toBeLessThan(eventF1(many));
    expect(manyHi).toBeGreaterThan(eventF1(many));
  });
});
