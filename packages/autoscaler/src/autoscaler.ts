import { ArteriaError, toArteriaError } from '@arteria/protocol';
import type { ScalingPolicy, ScalingSignals } from '@arteria/scaling';
import { Lifecycle, type LifecycleState, type ScaleTarget } from '@arteria/ports';
import type { PlatformSample, SignalSource } from './signal-source.js';


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
  readonly #life = new Lifecycle('autoscaler');
  #timer: NodeJS.Timeout | undefined;
  #inTick: Promise<unknown> | undefined;
  #last: { atMs: number; sample: PlatformSample } | undefined;
  readonly #decisions: AutoscalerDecision[] = [];
  readonly #deps: AutoscalerDeps;
  readonly settings: Readonly<AutoscalerSettings>;
  readonly #now: () => number;

  constructor(deps: AutoscalerDeps, settings: AutoscalerSettings) {
    if (!(settings.intervalMs > 0)) throw new ArteriaError('CONFIG_INVALID', `autoscaler intervalMs must be positive, got ${settings.intervalMs}`);
    if (settings.minWorkers > settings.maxWorkers) throw new ArteriaError('CONFIG_INVALID', `autoscaler minWorkers ${settings.minWorkers} exceeds maxWorkers ${settings.maxWorkers}`);
    this.#deps = deps;
    this.settings = Object.freeze({ ...settings });
    this.#now = deps.now ?? Date.now;
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** The most recent decisions, oldest first (at most 1,000). */
  get decisions(): readonly AutoscalerDecision[] {
    return this.#decisions;
  }

  /** Starts the control loop (ILLEGAL_STATE when started twice or after close). */
  async start(): Promise<void> {
    await this.#life.start(() => {
      this.#life.defer('control loop', async () => {
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = undefined;
        await this.#inTick;
      });
    });
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
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      if (!this.#life.running) return;
      this.#inTick = this.tick()
        .catch((err: unknown) => this.#deps.onError?.(toArteriaError(err, 'SCALE_TARGET_UNAVAILABLE')))
        .finally(() => {
          if (this.#life.running) this.#schedule(this.settings.intervalMs);
        });
    }, delayMs);
  }
}
