import { describe, expect, it } from 'vitest';
import { MetricHistory, percentilesOf } from '@arteria/telemetry';

const result = (e2eMs: number, status: 'ok' | 'rejected' | 'failed' = 'ok') => ({
  status,
  timings: { published: 1_000, enqueued: 1_001, leased: 1_003, fetched: 1_004, computed: 1_000 + e2eMs - 1, resultPublished: 1_000 + e2eMs },
});

/** The dashboard's ring of per-interval samples, on a clock the test moves. */
describe('MetricHistory', () => {
  it('percentiles are nearest-rank values of the real samples, not bucket edges', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100 ms
    expect(percentilesOf(values)).toEqual({ n: 100, meanMs: 50.5, p50Ms: 50, p95Ms: 95, p99Ms: 99, maxMs: 100 });
    expect(percentilesOf([106])).toMatchObject({ p50Ms: 106, p95Ms: 106, p99Ms: 106 });
    expect(percentilesOf([])).toBeNull();
  });

  it('keeps one point per interval with throughput, e2e percentiles and the last gauges; the ring forgets the oldest', () => {
    let now = 1_000_000;
    const history = new MetricHistory({ bucketMs: 1_000, buckets: 5 }, { now: () => now });
    for (const ms of [10, 20, 30, 40]) history.observeResult(result(ms));
    history.observeResult(result(500, 'failed'));
    history.recordGauges({ queueReady: 3, inFlight: 1, workersActual: 2, workersDesired: 4 });
    now += 1_000;
    history.observeResult(result(7));
    now += 500;
    const snap = history.snapshot();
    expect(snap.points).toHaveLength(5);
    const [first, second] = snap.points.slice(-2);
    expect(first).toMatchObject({ at: 1_000_000, results: { ok: 4, rejected: 0, failed: 1 }, throughputPerS: 5, queueReady: 3, inFlight: 1, workersActual: 2, workersDesired: 4 });
    expect(first?.e2e).toMatchObject({ n: 5, p50Ms: 30, p95Ms: 500, maxMs: 500 });
    // The current interval: its rate over the 500 ms elapsed so far; no gauge reading yet.
    expect(second).toMatchObject({ at: 1_001_000, results: { ok: 1 }, throughputPerS: 2, queueReady: null });
    // Stage percentiles over the window: enqueued is always 1 ms after published.
    expect(snap.stages.find((s) => s.stage === 'enqueued')).toMatchObject({ n: 6, p50Ms: 1, p99Ms: 1 });

    now += 10_000; // past the ring: the old intervals are gone, and a late result for them is dropped
    history.observeResult(result(9), 1_000_000);
    const later = history.snapshot();
    expect(later.points.every((p) => p.results.ok === 0 && p.e2e === null)).toBe(true);
    expect(later.stages).toEqual([]);
  });

  it('holds at most samplesPerBucket samples per interval, a uniform sample, while counting every result', () => {
    const history = new MetricHistory({ bucketMs: 60_000, buckets: 2, samplesPerBucket: 16 }, { now: () => 0 });
    for (let i = 1; i <= 10_000; i++) history.observeResult(result(i));
    const point = history.snapshot().points.at(-1);
    expect(point?.results.ok).toBe(10_000);
    expect(point?.e2e?.n).toBe(10_000);
    expect(point?.e2e?.meanMs).toBe(5_000.5); // the mean counts every result, not only the kept ones
    expect(point?.e2e?.maxMs).toBeLessThanOrEqual(10_000);
  });
});
