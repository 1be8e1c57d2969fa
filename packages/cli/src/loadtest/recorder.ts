import { STAGES, type ArteriaError, type Stage } from '@arteria/protocol';
import type { GatewayResult } from '@arteria/gateway';
import { percentilesOf, type HistoryPoint, type Percentiles } from '@arteria/telemetry';

/** What the target's ops surface says at one reading (absent when no --ops-url is given). */
export interface TargetReading {
  queueReady: number;
  inFlight: number;
  /** Workers running (null where the surface cannot know: a cluster dashboard). */
  workersActual: number | null;
  workersDesired: number | null;
  workersBusy: number | null;
}

export type LoadPoint = HistoryPoint & { workersBusy: number | null; sent: number; errors: number };

interface Interval {
  ok: number;
  rejected: number;
  failed: number;
  sent: number;
  errors: number;
  e2e: number[];
  reading: TargetReading | undefined;
}

/**
 * Everything a load test measures, as the devices see it: each result's stage timings
 * (from the run's acquisition at the gateway to the result's arrival there), every error
 * by code, and per-interval throughput with the target's queue and workers.
 */
export class LoadRecorder {
  readonly bucketMs: number;
  readonly startedAt: number;
  readonly #intervals: Interval[] = [];
  readonly #stages = new Map<Stage, number[]>();
  readonly #e2e: number[] = [];
  readonly #errors = new Map<string, number>();
  readonly #totals = { sent: 0, ok: 0, rejected: 0, failed: 0, errors: 0 };

  constructor(bucketMs: number, startedAt = Date.now()) {
    this.bucketMs = bucketMs;
    this.startedAt = startedAt;
  }

  sent(at = Date.now()): void {
    this.#totals.sent += 1;
    this.#interval(at).sent += 1;
  }

  result(result: GatewayResult, at = Date.now()): void {
    const interval = this.#interval(at);
    interval[result.status] += 1;
    this.#totals[result.status] += 1;
    if (result.error !== undefined) this.#count(result.error.code);
    const t = result.timings;
    if (t.acquired !== undefined) {
      const e2e = Math.max(0, t.received - t.acquired);
      this.#e2e.push(e2e);
      interval.e2e.push(e2e);
    }
    let previous: number | undefined;
    for (const stage of STAGES) {
      const v = t[stage];
      if (v === undefined) continue;
      if (previous !== undefined) {
        const list = this.#stages.get(stage) ?? [];
        list.push(Math.max(0, v - previous));
        this.#stages.set(stage, list);
      }
      previous = v;
    }
  }

  /** A run that got no result: the gateway or device reported an error. */
  error(error: ArteriaError, at = Date.now()): void {
    this.#totals.errors += 1;
    this.#interval(at).errors += 1;
    this.#count(error.code);
  }

  reading(reading: TargetReading, at = Date.now()): void {
    this.#interval(at).reading = reading;
  }

  get totals(): Readonly<{ sent: number; ok: number; rejected: number; failed: number; errors: number }> {
    return this.#totals;
  }

  e2e(): Percentiles | null {
    return percentilesOf(this.#e2e);
  }

  stages(): ({ stage: Stage } & Percentiles)[] {
    return STAGES.flatMap((stage) => {
      const p = percentilesOf(this.#stages.get(stage) ?? []);
      return p === null ? [] : [{ stage, ...p }];
    });
  }

  errorsByCode(): Record<string, number> {
    return Object.fromEntries([...this.#errors].sort((a, b) => b[1] - a[1]));
  }

  points(until = Date.now()): LoadPoint[] {
    const count = Math.max(1, Math.ceil((until - this.startedAt) / this.bucketMs));
    const out: LoadPoint[] = [];
    for (let i = 0; i < count; i++) {
      const iv = this.#intervals[i];
      const r = iv?.reading;
      const done = (iv?.ok ?? 0) + (iv?.rejected ?? 0) + (iv?.failed ?? 0);
      out.push({
        at: this.startedAt + i * this.bucketMs,
        results: { ok: iv?.ok ?? 0, rejected: iv?.rejected ?? 0, failed: iv?.failed ?? 0 },
        throughputPerS: (done * 1000) / this.bucketMs,
        e2e: percentilesOf(iv?.e2e ?? []),
        queueReady: r?.queueReady ?? null,
        inFlight: r?.inFlight ?? null,
        workersActual: r?.workersActual ?? null,
        workersDesired: r?.workersDesired ?? null,
        workersBusy: r?.workersBusy ?? null,
        sent: iv?.sent ?? 0,
        errors: iv?.errors ?? 0,
      });
    }
    return out;
  }

  #count(code: string): void {
    this.#errors.set(code, (this.#errors.get(code) ?? 0) + 1);
  }

  #interval(at: number): Interval {
    const index = Math.max(0, Math.floor((at - this.startedAt) / this.bucketMs));
    for (let i = this.#intervals.length; i <= index; i++) this.#intervals.push({ ok: 0, rejected: 0, failed: 0, sent: 0, errors: 0, e2e: [], reading: undefined });
    return this.#intervals[index] as Interval;
  }
}
