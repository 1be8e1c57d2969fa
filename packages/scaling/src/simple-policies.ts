import { ArteriaError } from '@arteria/protocol';
import type { ScalingPolicy, ScalingSignals } from './signals.js';

/** A constant worker count: 1:1 (one per device) or static peak sizing. */
export class FixedPolicy implements ScalingPolicy {
  constructor(
    readonly name: string,
    readonly workers: number,
  ) {
    if (!Number.isInteger(workers) || workers < 0) throw new ArteriaError('CONFIG_INVALID', `workers must be a whole number >= 0, got ${workers}`);
  }

  decide(_signals: ScalingSignals): number {
    return this.workers;
  }
}

export interface BacklogPolicyOptions {
  /** Backlog (waiting + in service) per worker the rule aims at (KEDA queue scalers' default target: 1 per replica here). */
  targetPerWorker: number;
  /** KEDA pollingInterval default: 30 s. */
  pollMs: number;
  /** HPA scale-down stabilization window default: 300 s (KEDA's cooldown is also 300 s). */
  stabilizationMs: number;
  /** HPA default scale-up limit per period: the larger of +100 % and +4 pods per 15 s. */
  scaleUpPeriodMs: number;
  minWorkers: number;
  maxWorkers: number;
}

export const BACKLOG_DEFAULTS: Readonly<BacklogPolicyOptions> = Object.freeze({
  targetPerWorker: 1,
  pollMs: 30_000,
  stabilizationMs: 300_000,
  scaleUpPeriodMs: 15_000,
  minWorkers: 1,
  maxWorkers: 100_000,
});

/**
 * A KEDA/HPA-like linear rule: desired = ceil(backlog / target), polled every 30 s,
 * scale-up at most doubling (or +4) per 15 s, scale-down to the highest desired value of
 * the last 5 minutes. It reacts to a queue that has already formed.
 */
export class BacklogPolicy implements ScalingPolicy {
  readonly name = 'backlog rule';
  readonly options: Readonly<BacklogPolicyOptions>;
  #target: number;
  #lastPollMs = Number.NEGATIVE_INFINITY;
  #lastUpMs = Number.NEGATIVE_INFINITY;
  readonly #history: { atMs: number; desired: number }[] = [];

  constructor(options: Partial<BacklogPolicyOptions> = {}) {
    this.options = Object.freeze({ ...BACKLOG_DEFAULTS, ...options });
    this.#target = this.options.minWorkers;
  }

  decide(s: ScalingSignals): number {
    const o = this.options;
    if (s.nowMs - this.#lastPollMs < o.pollMs) return this.#target;
    this.#lastPollMs = s.nowMs;
    const desired = clamp(Math.ceil((s.queued + s.busy) / o.targetPerWorker), o.minWorkers, o.maxWorkers);
    this.#history.push({ atMs: s.nowMs, desired });
    while ((this.#history[0]?.atMs ?? s.nowMs) < s.nowMs - o.stabilizationMs) this.#history.shift();
    if (desired > this.#target) {
      const periods = Math.max(1, Math.floor((s.nowMs - this.#lastUpMs) / o.scaleUpPeriodMs));
      let limit = this.#target;
      for (let i = 0; i < Math.min(periods, 32); i += 1) limit = Math.max(limit * 2, limit + 4);
      this.#target = Math.min(desired, limit);
      this.#lastUpMs = s.nowMs;
    } else {
      const stabilized = Math.max(...this.#history.map((h) => h.desired));
      this.#target = Math.min(this.#target, stabilized);
    }
    return this.#target;
  }
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
