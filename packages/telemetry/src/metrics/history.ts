import { z } from 'zod';
import { STAGES, type ResultV1, type Stage, ArteriaError } from '@arteria/protocol';

/** The dashboard's history: `buckets` intervals of `bucketMs` (default 10 s x 360 = the last hour). */
export const HistoryOptions = z.strictObject({
  bucketMs: z.number().int().min(100).max(3_600_000).default(10_000),
  buckets: z.number().int().min(2).max(10_000).default(360),
  /** Latency samples kept per interval and series; beyond it a uniform reservoir sample. */
  samplesPerBucket: z.number().int().min(16).max(100_000).default(512),
});
export type HistoryOptions = z.output<typeof HistoryOptions>;

/** What the gauges read at each sampling: queue depth and workers. */
export interface HistoryGauges {
  queueReady: number;
  inFlight: number;
  /** null where this process cannot know (a cluster dashboard). */
  workersActual: number | null;
  workersDesired: number | null;
}

export interface Percentiles {
  n: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** One interval, as `/api/history` serves it. */
export interface HistoryPoint {
  /** Start of the interval, epoch ms. */
  at: number;
  results: { ok: number; rejected: number; failed: number };
  /** Results per second over the interval (the current one: over its elapsed part). */
  throughputPerS: number;
  /** Device publish to result published, from the interval's samples; null without results. */
  e2e: Percentiles | null;
  /** Gauges at the interval's last sampling; null when none was taken in it. */
  queueReady: number | null;
  inFlight: number | null;
  workersActual: number | null;
  workersDesired: number | null;
}

export interface HistorySnapshot {
  bucketMs: number;
  points: HistoryPoint[];
  /** Per-stage percentiles (time from the previous stage) over the snapshot's window. */
  stages: ({ stage: Stage } & Percentiles)[];
}

/** Up to `capacity` values, a uniform sample of all offered (Vitter's algorithm R). */
class Reservoir {
  readonly values: number[] = [];
  seen = 0;
  sum = 0;
  constructor(private readonly capacity: number, private readonly random: () => number) {}

  offer(value: number): void {
    this.seen += 1;
    this.sum += value;
    if (this.values.length < this.capacity) this.values.push(value);
    else {
      const slot = Math.floor(this.random() * this.seen);
      if (slot < this.capacity) this.values[slot] = value;
    }
  }
}

interface Bucket {
  index: number;
  ok: number;
  rejected: number;
  failed: number;
  e2e: Reservoir;
  stages: Map<Stage, Reservoir>;
  gauges: HistoryGauges | undefined;
}

/**
 * Nearest-rank percentiles of real samples (not histogram bucket edges). `seen` and `sum`
 * count every value offered when `samples` is a reservoir of them.
 */
export function percentilesOf(samples: readonly number[], seen = samples.length, sum = samples.reduce((a, b) => a + b, 0)): Percentiles | null {
  if (samples.length === 0 || seen === 0) return null;
  const values = [...samples].sort((a, b) => a - b);
  const rank = (q: number): number => values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))] ?? 0;
  return { n: seen, meanMs: sum / seen, p50Ms: rank(0.5), p95Ms: rank(0.95), p99Ms: rank(0.99), maxMs: values[values.length - 1] ?? 0 };
}

function percentiles(reservoirs: readonly Reservoir[]): Percentiles | null {
  return percentilesOf(reservoirs.flatMap((r) => r.values), reservoirs.reduce((n, r) => n + r.seen, 0), reservoirs.reduce((s, r) => s + r.sum, 0));
}

/**
 * A bounded in-memory ring of per-interval samples, fed from what the platform already
 * measures: every published result (its stage timings) and a periodic reading of the queue
 * and worker gauges. Memory is fixed: `buckets` x (1 + stages) x `samplesPerBucket` numbers
 * at most. Nothing survives a restart; Prometheus keeps the long history.
 */
export class MetricHistory {
  readonly options: Readonly<HistoryOptions>;
  readonly #ring: (Bucket | undefined)[];
  readonly #now: () => number;
  readonly #random: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: Partial<HistoryOptions> = {}, clock: { now?: () => number; random?: () => number } = {}) {
    this.options = Object.freeze(HistoryOptions.parse(options));
    this.#ring = new Array<Bucket | undefined>(this.options.buckets);
    this.#now = clock.now ?? Date.now;
    this.#random = clock.random ?? Math.random;
  }

  /**
   * Records a published result's status and stage timings in the interval of `at` (default
   * now); one older than the ring is dropped.
   */
  observeResult(result: Pick<ResultV1, 'status' | 'timings'>, at = this.#now()): void {
    const bucket = this.#bucket(at);
    if (bucket === undefined) return;
    bucket[result.status] += 1;
    const t = result.timings;
    const start = t.published ?? t.uploaded;
    if (start !== undefined && t.resultPublished !== undefined) bucket.e2e.offer(Math.max(0, t.resultPublished - start));
    let previous: number | undefined;
    for (const stage of STAGES) {
      const at = t[stage];
      if (at === undefined) continue;
      if (previous !== undefined) {
        let r = bucket.stages.get(stage);
        if (!r) bucket.stages.set(stage, (r = this.#reservoir()));
        r.offer(Math.max(0, at - previous));
      }
      previous = at;
    }
  }

  /** Records the gauges' reading; the interval keeps its last one. */
  recordGauges(gauges: HistoryGauges): void {
    const bucket = this.#bucket(this.#now());
    if (bucket) bucket.gauges = gauges;
  }

  /**
   * Reads the gauges every `everyMs` (default: four times per interval) until `stop`. A
   * failed reading (the queue is down) leaves a gap and is reported.
   */
  sampleEvery(read: () => Promise<HistoryGauges>, onError: (err: unknown) => void, everyMs = Math.max(50, Math.floor(this.options.bucketMs / 4))): void {
    if (this.#timer !== undefined) throw new ArteriaError('ILLEGAL_STATE', 'metric history is already sampling: cannot start sampling again');
    const tick = (): void => {
      read().then((g) => this.recordGauges(g), onError);
    };
    tick();
    this.#timer = setInterval(tick, everyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The last `windowMs` (default: the whole ring), oldest first, one point per interval (empty ones too). */
  snapshot(windowMs = this.options.bucketMs * this.options.buckets): HistorySnapshot {
    const { bucketMs, buckets } = this.options;
    const now = this.#now();
    const current = Math.floor(now / bucketMs);
    const count = Math.min(buckets, Math.max(1, Math.ceil(windowMs / bucketMs)));
    const points: HistoryPoint[] = [];
    const stageReservoirs = new Map<Stage, Reservoir[]>();
    for (let index = current - count + 1; index <= current; index++) {
      const bucket = this.#ring[index % buckets];
      const at = index * bucketMs;
      if (bucket === undefined || bucket.index !== index) {
        points.push({ at, results: { ok: 0, rejected: 0, failed: 0 }, throughputPerS: 0, e2e: null, queueReady: null, inFlight: null, workersActual: null, workersDesired: null });
        continue;
      }
      for (const [stage, r] of bucket.stages) stageReservoirs.set(stage, [...(stageReservoirs.get(stage) ?? []), r]);
      const elapsedMs = index === current ? Math.max(1, now - at) : bucketMs;
      const g = bucket.gauges;
      points.push({
        at,
        results: { ok: bucket.ok, rejected: bucket.rejected, failed: bucket.failed },
        throughputPerS: ((bucket.ok + bucket.rejected + bucket.failed) * 1000) / elapsedMs,
        e2e: percentiles([bucket.e2e]),
        queueReady: g?.queueReady ?? null,
        inFlight: g?.inFlight ?? null,
        workersActual: g?.workersActual ?? null,
        workersDesired: g?.workersDesired ?? null,
      });
    }
    const stages = STAGES.flatMap((stage) => {
      const p = percentiles(stageReservoirs.get(stage) ?? []);
      return p === null ? [] : [{ stage, ...p }];
    });
    return { bucketMs, points, stages };
  }

  #reservoir(): Reservoir {
    return new Reservoir(this.options.samplesPerBucket, this.#random);
  }

  #bucket(at: number): Bucket | undefined {
    const index = Math.floor(at / this.options.bucketMs);
    if (index <= Math.floor(this.#now() / this.options.bucketMs) - this.options.buckets) return undefined;
    const slot = index % this.options.buckets;
    let bucket = this.#ring[slot];
    if (bucket !== undefined && bucket.index > index) return undefined; // its slot already holds a newer interval
    if (bucket === undefined || bucket.index !== index) {
      bucket = { index, ok: 0, rejected: 0, failed: 0, e2e: this.#reservoir(), stages: new Map(), gauges: undefined };
      this.#ring[slot] = bucket;
    }
    return bucket;
  }
}
