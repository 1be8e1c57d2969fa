import { ArteriaError } from '@arteria/protocol';
import { minServers, variabilityFactor } from './erlang.js';
import { clamp } from './simple-policies.js';
import type { ScalingPolicy, ScalingSignals } from './signals.js';

export interface ArteriaPolicyOptions {
  waitBudgetMs: number;
  /** Target P(wait > waitBudgetMs). */
  epsilon: number;
  /** The model is asked for epsilon / safety, to absorb estimation error. */
  safety: number;
  /** A new worker takes work this long after it is asked for: the forecast horizon. */
  workerStartupMs: number;
  minWorkers: number;
  maxWorkers: number;
  /** Requests per run (they arrive together); sets the batch correction. */
  requestsPerRun: number;
  /** Priors, used until measurements accumulate. */
  serviceMs: number;
  serviceCv: number;
  /** Requests per second from one device in a procedure; undefined: learn it. */
  requestsPerActiveDevicePerS: number | undefined;
  /** Mean procedure length: sets how far the in-procedure count can drift over the horizon. */
  procedureMeanMs: number;
  /** Time constants of the smoothing. */
  rateSmoothingMs: number;
  deviceRateSmoothingMs: number;
  serviceSmoothingMs: number;
  trendSmoothingMs: number;
  /** Scale in only to the highest target of this window, and only by more than the deadband. */
  scaleInDelayMs: number;
  scaleInDeadband: number;
}

export const ARTERIA_POLICY_DEFAULTS: Readonly<ArteriaPolicyOptions> = Object.freeze({
  waitBudgetMs: 2_000,
  epsilon: 1e-4,
  safety: 10,
  workerStartupMs: 120_000,
  minWorkers: 1,
  maxWorkers: 100_000,
  requestsPerRun: 1,
  serviceMs: 3_000,
  serviceCv: 1,
  requestsPerActiveDevicePerS: undefined,
  procedureMeanMs: 45 * 60_000,
  rateSmoothingMs: 60_000,
  deviceRateSmoothingMs: 30 * 60_000,
  serviceSmoothingMs: 10 * 60_000,
  trendSmoothingMs: 10 * 60_000,
  scaleInDelayMs: 180_000,
  scaleInDeadband: 0.03,
});

/** Pseudo-observations the priors are worth. */
const PRIOR_SERVICES = 20;

/**
 * Arteria's policy. Load is forecast one worker start-up ahead from the devices in a
 * procedure (the leading indicator) times their learned request rate, never below the
 * directly measured arrival rate; the Erlang C model (batch and service-time corrected)
 * turns it into workers; a queue older than half the budget adds workers for what waits.
 * Scale-out is immediate; scale-in waits for the window and a deadband, and the targets
 * it lowers are drained, never cut off.
 */
export class ArteriaPolicy implements ScalingPolicy {
  readonly name = 'arteria';
  readonly options: Readonly<ArteriaPolicyOptions>;
  #lastMs: number | undefined;
  #rate = 0; // requests per ms
  #devArrivals = 0;
  #devTimeMs = 0;
  #svcN = PRIOR_SERVICES;
  #svcSum: number;
  #svcSq: number;
  #lastDevices: number | undefined;
  #slope = 0; // devices per ms
  #target: number;
  readonly #history: { atMs: number; desired: number }[] = [];
  #last: PolicyExplanation | undefined;

  constructor(options: Partial<ArteriaPolicyOptions> = {}) {
    const o = (this.options = Object.freeze({ ...ARTERIA_POLICY_DEFAULTS, ...options }));
    if (!(o.epsilon > 0 && o.epsilon < 1)) throw new ArteriaError('CONFIG_INVALID', `epsilon must be in (0, 1), got ${o.epsilon}`);
    if (!(o.safety >= 1)) throw new ArteriaError('CONFIG_INVALID', `safety must be >= 1, got ${o.safety}`);
    this.#svcSum = PRIOR_SERVICES * o.serviceMs;
    this.#svcSq = PRIOR_SERVICES * o.serviceMs * o.serviceMs * (1 + o.serviceCv * o.serviceCv);
    if (o.requestsPerActiveDevicePerS !== undefined) {
      // Worth one smoothing window of one device.
      this.#devTimeMs = o.deviceRateSmoothingMs;
      this.#devArrivals = (o.requestsPerActiveDevicePerS / 1000) * o.deviceRateSmoothingMs;
    }
    this.#target = o.minWorkers;
  }

  /** The numbers behind the last decision (for logs, metrics and the dashboard). */
  get explanation(): PolicyExplanation | undefined {
    return this.#last;
  }

  decide(s: ScalingSignals): number {
    const o = this.options;
    const dt = this.#lastMs === undefined ? 0 : Math.max(0, s.nowMs - this.#lastMs);
    this.#lastMs = s.nowMs;
    const devices = s.devicesInProcedure;

    if (dt > 0) {
      this.#rate += (1 - Math.exp(-dt / o.rateSmoothingMs)) * (s.arrivals / dt - this.#rate);
      const dd = Math.exp(-dt / o.deviceRateSmoothingMs);
      const activeMs = (((this.#lastDevices ?? devices ?? 0) + (devices ?? 0)) / 2) * dt;
      if (devices !== undefined) {
        this.#devArrivals = this.#devArrivals * dd + s.arrivals;
        this.#devTimeMs = this.#devTimeMs * dd + activeMs;
      }
      if (devices !== undefined && this.#lastDevices !== undefined) {
        this.#slope += (1 - Math.exp(-dt / o.trendSmoothingMs)) * ((devices - this.#lastDevices) / dt - this.#slope);
      }
    } else if (devices !== undefined && this.#devTimeMs > 0) {
      this.#rate = (this.#devArrivals / this.#devTimeMs) * devices;
    }
    const ds = dt > 0 ? Math.exp(-dt / o.serviceSmoothingMs) : 1;
    this.#svcN = this.#svcN * ds + s.completions;
    this.#svcSum = this.#svcSum * ds + s.serviceMsSum;
    this.#svcSq = this.#svcSq * ds + s.serviceMsSumSquares;
    if (devices !== undefined) this.#lastDevices = devices;

    const serviceMs = this.#svcSum / this.#svcN;
    const serviceCv = Math.sqrt(Math.max(0, this.#svcSq / this.#svcN / (serviceMs * serviceMs) - 1));
    const horizonMs = o.workerStartupMs + dt;
    let forecastDevices: number | undefined;
    let ratePerMs = this.#rate;
    if (devices !== undefined && this.#devTimeMs > 0) {
      const drift = 2 * Math.sqrt((2 * devices * horizonMs) / o.procedureMeanMs);
      forecastDevices = devices + Math.max(0, this.#slope * horizonMs) + drift;
      ratePerMs = Math.max(ratePerMs, (this.#devArrivals / this.#devTimeMs) * forecastDevices);
    }
    const loadErlangs = ratePerMs * serviceMs;
    const variability = variabilityFactor({ serviceCv, requestsPerRun: o.requestsPerRun });
    const model = minServers({ loadErlangs, serviceMs, waitBudgetMs: o.waitBudgetMs, epsilon: o.epsilon / o.safety, variability, minServers: o.minWorkers, batchSize: o.requestsPerRun });
    const queueCorrection = s.queued > 0 && s.oldestWaitMs > o.waitBudgetMs / 2 ? s.busy + s.queued : 0;
    const desired = clamp(Math.max(model, queueCorrection), o.minWorkers, o.maxWorkers);

    this.#history.push({ atMs: s.nowMs, desired });
    while ((this.#history[0]?.atMs ?? s.nowMs) < s.nowMs - o.scaleInDelayMs) this.#history.shift();
    if (desired >= this.#target) {
      this.#target = desired;
    } else {
      let windowMax = desired;
      for (const h of this.#history) windowMax = Math.max(windowMax, h.desired);
      const deadband = Math.max(1, Math.ceil(o.scaleInDeadband * this.#target));
      if (this.#target - windowMax >= deadband) this.#target = windowMax;
    }
    this.#last = { atMs: s.nowMs, loadErlangs, serviceMs, serviceCv, forecastDevices, model, queueCorrection, target: this.#target };
    return this.#target;
  }
}

export interface PolicyExplanation {
  atMs: number;
  loadErlangs: number;
  serviceMs: number;
  serviceCv: number;
  forecastDevices: number | undefined;
  model: number;
  queueCorrection: number;
  target: number;
}
