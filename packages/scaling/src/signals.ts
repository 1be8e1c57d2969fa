/**
 * What a scaling policy observes at each control tick. The live controller fills it from
 * the platform (queue stats, device directory, worker pool); the simulator fills it from
 * simulated state. The policy never sees anything else, so both run the same code.
 */
export interface ScalingSignals {
  nowMs: number;
  /** Requests that arrived since the previous observation. */
  arrivals: number;
  /** Requests whose service finished since the previous observation, and their service times. */
  completions: number;
  serviceMsSum: number;
  serviceMsSumSquares: number;
  /** Devices currently in a procedure (from status messages); undefined when unknown. */
  devicesInProcedure: number | undefined;
  /** Requests waiting for a worker. */
  queued: number;
  /** Age of the oldest waiting request, ms (0 when none wait). */
  oldestWaitMs: number;
  /** Workers taking work, workers still starting, and workers busy right now. */
  ready: number;
  starting: number;
  busy: number;
}

/** Observed signals in, desired worker count out. Stateful (smoothing, hysteresis) but deterministic. */
export interface ScalingPolicy {
  readonly name: string;
  /** The worker count wanted now. Called once per control tick, with nowMs not decreasing. */
  decide(signals: ScalingSignals): number;
}
