import { minServers } from './erlang.js';
import type { ScalingPolicy, ScalingSignals } from './signals.js';
import type { Trace } from './trace.js';
import { erlangsPerActiveDevice, workloadVariability, type Workload } from './workload.js';

/**
 * The lower bound: knows the true per-device load and, reading the trace, the most
 * devices that will be in a procedure before its next decision; its workers start
 * instantly (run it with workerStartupMs 0) and it scales in at once (still draining).
 */
export class OraclePolicy implements ScalingPolicy {
  readonly name = 'oracle';
  #starts = 0;
  #ends = 0;

  constructor(
    private readonly trace: Trace,
    private readonly workload: Workload,
    private readonly tickMs: number,
    private readonly minWorkers: number,
  ) {}

  decide(s: ScalingSignals): number {
    const { procedureStartMs: starts, procedureEndMs: ends } = this.trace;
    while (this.#starts < starts.length && (starts[this.#starts] ?? Infinity) <= s.nowMs) this.#starts += 1;
    while (this.#ends < ends.length && (ends[this.#ends] ?? Infinity) <= s.nowMs) this.#ends += 1;
    // Walk the procedure events of the coming tick, keeping the highest count.
    let devices = this.#starts - this.#ends;
    let most = devices;
    let i = this.#starts;
    let j = this.#ends;
    const until = s.nowMs + this.tickMs;
    for (;;) {
      const ts = starts[i] ?? Infinity;
      const te = ends[j] ?? Infinity;
      if (Math.min(ts, te) > until) break;
      if (ts <= te) {
        devices += 1;
        i += 1;
      } else {
        devices -= 1;
        j += 1;
      }
      most = Math.max(most, devices);
    }
    const w = this.workload;
    return minServers({
      loadErlangs: most * erlangsPerActiveDevice(w),
      serviceMs: w.serviceMeanMs,
      waitBudgetMs: w.waitBudgetMs,
      epsilon: w.epsilon,
      variability: workloadVariability(w),
      minServers: this.minWorkers,
      batchSize: w.requestsPerRun,
    });
  }
}
