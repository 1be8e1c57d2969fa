import { toArteriaError } from '@arteria/protocol';
import type { ScalingPolicy, ScalingSignals } from '@arteria/scaling';
import type { ScaleTarget } from './scale-target.js';
import type { PlatformSample, SignalSource } from './signal-source.js';

export type AutoscalerState = 'idle' | 'running' | 'stopped';

export interface AutoscalerDeps {
  policy: ScalingPolicy;
  target: ScaleTarget;
  source: SignalSource;
  onDecision?: (decision: AutoscalerDecision) => void;
  onError?: (error: Error) => void;
  now?: () => number;
}

export interface AutoscalerSettings {
  intervalMs: number;
  minWorkers: number;
  maxWorkers: number;
  /** Used to fill squared service times when the source cannot measure them. */
  assumedServiceCv: number;
}

export interface AutoscalerDecision {
  atMs: number;
  previous: number;
  target: number;
  signals: ScalingSignals;
}

/**
 * The live controller: every interval it samples the platform, turns counters into the
 * signals a `ScalingPolicy` takes (the same policy code the simulator runs), and applies
 * the policy's answer to the `ScaleTarget`. A failed tick is reported and the next one
 * tries again; the workers keep running meanwhile.
 */
export class Autoscaler {
  #state: AutoscalerState = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #inTick: Promise<unknown> | undefined;
  #last: { atMs: number; sample: PlatformSample } | undefined;
  readonly #decisions: AutoscalerDecision[] = [];
  readonly #deps: AutoscalerDeps;
  readonly settings: Readonly<AutoscalerSettings>;
  readonly #now: () => number;

  constructor(deps: AutoscalerDeps, settings: AutoscalerSettings) {
    if (!(settings.intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${settings.intervalMs}`);
    if (settings.minWorkers > settings.maxWorkers) throw new RangeError(`minWorkers ${settings.minWorkers} exceeds maxWorkers ${settings.maxWorkers}`);
    this.#deps = deps;
    this.settings = Object.freeze({ ...settings });
    this.#now = deps.now ?? Date.now;
  }

  get state(): AutoscalerState {
    return this.#state;
  }

  /** The most recent decisions, oldest first (at most 1,000). */
  get decisions(): readonly AutoscalerDecision[] {
    return this.#decisions;
  }

  start(): void {
    if (this.#state !== 'idle') throw new Error(`autoscaler cannot start from state ${this.#state}`);
    this.#state = 'running';
    this.#schedule(0);
  }

  /** One control step: sample, decide, apply. */
  async tick(): Promise<AutoscalerDecision> {
    const { policy, target, source } = this.#deps;
    const [sample, replicas] = await Promise.all([source.sample(), target.getReplicas()]);
    const atMs = this.#now();
    const prev = this.#last;
    this.#last = { atMs, sample };
    const serviced = prev ? Math.max(0, sample.serviced - prev.sample.serviced) : 0;
    const serviceMsSum = prev ? Math.max(0, sample.serviceMsSum - prev.sample.serviceMsSum) : 0;
    let sumSquares: number;
    if (sample.serviceMsSumSquares !== undefined && prev?.sample.serviceMsSumSquares !== undefined) sumSquares = Math.max(0, sample.serviceMsSumSquares - prev.sample.serviceMsSumSquares);
    else sumSquares = serviced > 0 ? ((serviceMsSum * serviceMsSum) / serviced) * (1 + this.settings.assumedServiceCv ** 2) : 0;
    const ready = replicas.ready ?? replicas.desired;
    const signals: ScalingSignals = {
      nowMs: atMs,
      arrivals: prev ? Math.max(0, sample.accepted - prev.sample.accepted) : 0,
      completions: serviced,
      serviceMsSum,
      serviceMsSumSquares: sumSquares,
      devicesInProcedure: sample.devicesInProcedure,
      queued: sample.queue.ready,
      // The queue reports its oldest unacknowledged task; only meaningful while tasks wait.
      oldestWaitMs: sample.queue.ready > 0 ? sample.queue.oldestAgeMs : 0,
      ready,
      starting: Math.max(0, replicas.desired - ready),
      busy: sample.queue.inFlight,
    };
    const wanted = Math.round(policy.decide(signals));
    const next = Math.min(this.settings.maxWorkers, Math.max(this.settings.minWorkers, wanted));
    if (next !== replicas.desired) await target.setReplicas(next);
    const decision: AutoscalerDecision = { atMs, previous: replicas.desired, target: next, signals };
    this.#decisions.push(decision);
    if (this.#decisions.length > 1_000) this.#decisions.shift();
    this.#deps.onDecision?.(decision);
    return decision;
  }

  /** Stops the loop and waits for a tick in progress. Idempotent; workers are left as they are. */
  async close(): Promise<void> {
    this.#state = 'stopped';
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inTick;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      if (this.#state !== 'running') return;
      this.#inTick = this.tick()
        .catch((err: unknown) => this.#deps.onError?.(toArteriaError(err, 'SCALE_TARGET_UNAVAILABLE')))
        .finally(() => {
          if (this.#state === 'running') this.#schedule(this.settings.intervalMs);
        });
    }, delayMs);
  }
}
