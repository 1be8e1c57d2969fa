import { Random } from './random.js';
import type { ScalingPolicy, ScalingSignals } from './signals.js';
import { TimedHeap } from './timed-heap.js';
import type { Trace } from './trace.js';
import { WaitHistogram } from './wait-histogram.js';

export interface SimulationOptions {
  /** How often the policy is asked, ms. */
  tickMs: number;
  /** From asking for a worker to its first task, ms (0: instant, the oracle's privilege). */
  workerStartupMs: number;
  /**
   * Start-up varies (node provisioning, image pull, model load): each new worker takes
   * workerStartupMs plus a uniform draw from [0, workerStartupSpreadMs].
   */
  workerStartupSpreadMs: number;
  waitBudgetMs: number;
  /** Worker crashes per worker-hour; a crashed worker's task reappears after redeliveryMs. */
  failuresPerWorkerHour: number;
  /** The work queue's visibility timeout: how long a crashed worker's task stays hidden. */
  redeliveryMs: number;
  /** Deliveries after which a task is dead-lettered (a drop). */
  maxDeliveries: number;
  /** After the horizon, the simulation runs on this long so waiting work can finish. */
  drainMs: number;
  /**
   * The first part of the trace lets every policy settle; requests arriving in it and
   * worker time spent in it are not counted.
   */
  warmupMs: number;
  seed: number;
}

export const SIMULATION_DEFAULTS: Readonly<SimulationOptions> = Object.freeze({
  tickMs: 10_000,
  workerStartupMs: 120_000,
  workerStartupSpreadMs: 0,
  waitBudgetMs: 2_000,
  failuresPerWorkerHour: 1 / 2_000,
  redeliveryMs: 30_000,
  maxDeliveries: 5,
  drainMs: 3_600_000,
  warmupMs: 0,
  seed: 1,
});

export interface SimulationResult {
  policy: string;
  requests: number;
  completed: number;
  /** Requests never completed: dead-lettered or still waiting when the simulation ended. */
  drops: number;
  /** Requests whose wait exceeded the budget (unfinished ones included). */
  violations: number;
  pWaitOverBudget: number;
  maxWaitMs: number;
  waitP50Ms: number;
  waitP99Ms: number;
  waitP9999Ms: number;
  /** Worker time (starting, serving, idle or draining) over the horizon after the warm-up. */
  workerHours: number;
  meanWorkers: number;
  peakWorkers: number;
  workerStarts: number;
  failures: number;
  /** Arrival times of the first 1,000 requests that waited longer than the budget, ms. */
  violationArrivalsMs: number[];
  /** Workers in existence at each tick after the warm-up. */
  workersPerTick: Float32Array;
  /** Devices in a procedure at each tick after the warm-up. */
  devicesPerTick: Float32Array;
}

/**
 * Discrete-event simulation of one policy against one trace. Workers are identical, so
 * they are counted rather than modelled one by one; only tasks in service are tracked
 * (a heap of completion times). Scale-in removes starting workers first, then idle ones,
 * then marks busy ones to retire after their current task: nothing is cut off.
 */
export function simulate(trace: Trace, policy: ScalingPolicy, input: Partial<SimulationOptions> = {}): SimulationResult {
  const o: SimulationOptions = { ...SIMULATION_DEFAULTS, ...input };
  const { arrivalMs, serviceMs, procedureStartMs, procedureEndMs, horizonMs } = trace;
  const n = arrivalMs.length;
  const rng = new Random(o.seed * 31 + 7);
  const waits = new Float64Array(n).fill(Infinity);
  const done = new Uint8Array(n);
  const from = o.warmupMs;
  const span = (a: number, b: number): number => Math.max(0, Math.min(b, horizonMs) - Math.max(a, from));
  const deliveries = new Uint8Array(n);
  const queue = new Int32Array(n);
  let qHead = 0;
  let qTail = 0;
  const redelivered: number[] = []; // visible again, served first
  const hidden: { at: number; id: number }[] = []; // waiting out the visibility timeout (ascending)
  const inService = new TimedHeap();
  const starting = new TimedHeap();
  let idle = 0;
  let busy = 0;
  let retiring = 0;
  let completed = 0;
  let workerStarts = 0;
  let failures = 0;
  let workerMs = 0;
  let peak = 0;
  let lastT = 0;
  let nextArrival = 0;
  let startsSeen = 0;
  let endsSeen = 0;
  const ticks = Math.ceil((horizonMs - from) / o.tickMs) + 1;
  const firstTick = Math.ceil(from / o.tickMs);
  const workersPerTick = new Float32Array(ticks);
  const devicesPerTick = new Float32Array(ticks);
  const tick = { arrivals: 0, completions: 0, sum: 0, sq: 0 };
  const end = horizonMs + o.drainMs;

  const serve = (id: number, t: number): void => {
    deliveries[id] = (deliveries[id] ?? 0) + 1;
    if ((deliveries[id] ?? 0) > o.maxDeliveries) {
      // Dead-lettered: never done, so counted as a drop.
      idle += 1;
      return;
    }
    busy += 1;
    waits[id] = t - (arrivalMs[id] ?? t);
    inService.push(t + (serviceMs[id] ?? 0), id);
  };
  const takeWork = (): number => {
    if (redelivered.length > 0) return redelivered.shift() ?? -1;
    return qHead < qTail ? (queue[qHead++] ?? -1) : -1;
  };
  const fillIdle = (t: number): void => {
    while (idle > 0) {
      const id = takeWork();
      if (id < 0) return;
      idle -= 1;
      serve(id, t);
    }
  };
  const addWorkers = (count: number, t: number): void => {
    workerStarts += count;
    // The first decision finds the fleet as yesterday left it: its workers already run.
    if (o.workerStartupMs <= 0 || t === 0) {
      idle += count;
      fillIdle(t);
    } else for (let i = 0; i < count; i += 1) starting.push(t + o.workerStartupMs + (o.workerStartupSpreadMs > 0 ? rng.next() * o.workerStartupSpreadMs : 0), 0);
  };
  const removeWorkers = (count: number): void => {
    let k = count;
    while (k > 0 && starting.size > 0) {
      starting.removeAt(starting.indexOfMax());
      k -= 1;
    }
    const m = Math.min(k, idle);
    idle -= m;
    k -= m;
    retiring += Math.min(k, busy - retiring);
  };
  const crashOne = (t: number): void => {
    const total = idle + busy + starting.size;
    if (total === 0) return;
    failures += 1;
    const u = Math.floor(rng.next() * total);
    if (u < idle) idle -= 1;
    else if (u < idle + busy) {
      const index = Math.floor(rng.next() * inService.size);
      const id = inService.idAt(index);
      inService.removeAt(index);
      busy -= 1;
      retiring = Math.min(retiring, busy);
      hidden.push({ at: t + o.redeliveryMs, id });
    } else starting.removeAt(0);
  };

  for (let k = 0; ; k += 1) {
    const tickAt = k * o.tickMs;
    // Every event before the tick.
    for (;;) {
      const ta = nextArrival < n ? (arrivalMs[nextArrival] ?? Infinity) : Infinity;
      const tc = inService.topTime;
      const tr = starting.topTime;
      const th = hidden.length > 0 ? (hidden[0]?.at ?? Infinity) : Infinity;
      const t = Math.min(ta, tc, tr, th);
      if (t >= tickAt) break;
      workerMs += (idle + busy + starting.size) * span(lastT, t);
      lastT = t;
      if (t === tc) {
        const id = inService.topId;
        inService.removeAt(0);
        const s = serviceMs[id] ?? 0;
        done[id] = 1;
        tick.completions += 1;
        tick.sum += s;
        tick.sq += s * s;
        busy -= 1;
        if (retiring > 0) retiring -= 1;
        else {
          idle += 1;
          fillIdle(t);
        }
      } else if (t === ta) {
        tick.arrivals += 1;
        queue[qTail++] = nextArrival++;
        fillIdle(t);
      } else if (t === tr) {
        starting.removeAt(0);
        idle += 1;
        fillIdle(t);
      } else {
        const h = hidden.shift();
        if (h) redelivered.push(h.id);
        fillIdle(t);
      }
    }
    workerMs += (idle + busy + starting.size) * span(lastT, tickAt);
    lastT = tickAt;
    const idleOrDone = nextArrival >= n && busy === 0 && qHead >= qTail && redelivered.length === 0 && hidden.length === 0;
    if (tickAt >= end || (tickAt >= horizonMs && idleOrDone)) break;

    while (startsSeen < procedureStartMs.length && (procedureStartMs[startsSeen] ?? Infinity) <= tickAt) startsSeen += 1;
    while (endsSeen < procedureEndMs.length && (procedureEndMs[endsSeen] ?? Infinity) <= tickAt) endsSeen += 1;
    const devices = startsSeen - endsSeen;

    const expectedFailures = (o.failuresPerWorkerHour * (idle + busy + starting.size) * o.tickMs) / 3_600_000;
    for (let f = rng.poisson(expectedFailures); f > 0; f -= 1) crashOne(tickAt);

    const oldest = redelivered.length > 0 ? redelivered[0] : qHead < qTail ? queue[qHead] : undefined;
    const signals: ScalingSignals = {
      nowMs: tickAt,
      arrivals: tick.arrivals,
      completions: tick.completions,
      serviceMsSum: tick.sum,
      serviceMsSumSquares: tick.sq,
      devicesInProcedure: devices,
      queued: qTail - qHead + redelivered.length,
      oldestWaitMs: oldest === undefined ? 0 : tickAt - (arrivalMs[oldest] ?? tickAt),
      ready: idle + busy - retiring,
      starting: starting.size,
      busy,
    };
    tick.arrivals = tick.completions = tick.sum = tick.sq = 0;
    const target = Math.max(0, Math.round(policy.decide(signals)));
    const current = idle + busy - retiring + starting.size;
    if (target > current) addWorkers(target - current, tickAt);
    else if (target < current) removeWorkers(current - target);
    const existing = idle + busy + starting.size;
    if (tickAt <= horizonMs && k >= firstTick) {
      peak = Math.max(peak, existing);
      workersPerTick[k - firstTick] = existing;
      devicesPerTick[k - firstTick] = devices;
    }
  }

  const histogram = new WaitHistogram();
  let violations = 0;
  let maxWait = 0;
  const violationArrivalsMs: number[] = [];
  let requests = 0;
  for (let i = 0; i < n; i += 1) {
    if ((arrivalMs[i] ?? 0) < from) continue;
    requests += 1;
    completed += done[i] ?? 0;
    const w = waits[i] ?? Infinity;
    if (w > o.waitBudgetMs) {
      violations += 1;
      if (violationArrivalsMs.length < 1_000) violationArrivalsMs.push((arrivalMs[i] ?? 0) - from);
    }
    if (w > maxWait) maxWait = w;
    histogram.add(w);
  }
  return {
    policy: policy.name,
    requests,
    completed,
    drops: requests - completed,
    violations,
    pWaitOverBudget: requests > 0 ? violations / requests : 0,
    maxWaitMs: maxWait,
    waitP50Ms: histogram.quantile(0.5),
    waitP99Ms: histogram.quantile(0.99),
    waitP9999Ms: histogram.quantile(0.9999),
    workerHours: workerMs / 3_600_000,
    meanWorkers: workerMs / (horizonMs - from),
    peakWorkers: peak,
    workerStarts,
    failures,
    violationArrivalsMs,
    workersPerTick,
    devicesPerTick,
  };
}
