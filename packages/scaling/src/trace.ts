import { Random } from './random.js';
import { procedureShareAt, peakProcedureShare, type Workload } from './workload.js';

/**
 * One simulated day of a fleet, generated once and replayed against every policy (common
 * random numbers: the policies see exactly the same arrivals and service times).
 */
export interface Trace {
  horizonMs: number;
  /** Request arrival times, ms, ascending; requests of one run share a time. */
  arrivalMs: Float64Array;
  /** Service time of each request, ms. */
  serviceMs: Float64Array;
  /** Procedure starts and ends, ms, each ascending. */
  procedureStartMs: Float64Array;
  procedureEndMs: Float64Array;
}

class Growable {
  data = new Float64Array(1024);
  length = 0;
  push(x: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = x;
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

/**
 * `dayOffsetMs` is the time of day at trace time 0 (negative: the day before), so a
 * simulation can start before midnight and let every policy settle first.
 */
export function generateTrace(w: Workload, horizonMs: number, seed: number, dayOffsetMs = 0): Trace {
  const rng = new Random(seed);
  const runs = new Growable();
  const starts = new Growable();
  const ends = new Growable();
  const runMeanMs = 3_600_000 / w.runsPerHour;
  const d = w.procedureMeanMs;
  // Idle -> procedure hazard keeps the in-procedure share at p(t): lambda = p / ((1 - p) d).
  const hazard = (t: number): number => {
    const p = procedureShareAt(w, t + dayOffsetMs);
    return p / ((1 - p) * d);
  };
  const pMax = peakProcedureShare(w);
  const hazardMax = pMax / ((1 - pMax) * d);
  for (let device = 0; device < w.devices; device += 1) {
    let t = 0;
    let inProcedure = rng.next() < procedureShareAt(w, dayOffsetMs);
    while (t < horizonMs) {
      if (inProcedure) {
        const end = Math.min(horizonMs, t + rng.lognormal(d, 0.5));
        starts.push(t);
        ends.push(end);
        for (let r = t + rng.exponential(runMeanMs); r < end; r += rng.exponential(runMeanMs)) runs.push(r);
        t = end;
        inProcedure = false;
      } else {
        // Thinning: candidate starts at the peak hazard, kept with probability hazard(t) / peak.
        t += rng.exponential(1 / hazardMax);
        if (t < horizonMs && rng.next() * hazardMax < hazard(t)) inProcedure = true;
      }
    }
  }
  const runTimes = runs.sorted();
  const k = w.requestsPerRun;
  const arrivalMs = new Float64Array(runTimes.length * k);
  for (let i = 0; i < runTimes.length; i += 1) arrivalMs.fill(runTimes[i] ?? 0, i * k, i * k + k);
  const serviceMs = new Float64Array(arrivalMs.length);
  for (let i = 0; i < serviceMs.length; i += 1) serviceMs[i] = drawService(w, rng);
  return { horizonMs, arrivalMs, serviceMs, procedureStartMs: starts.sorted(), procedureEndMs: ends.sorted() };
}

function drawService(w: Workload, rng: Random): number {
  switch (w.serviceDistribution) {
    case 'deterministic':
      return w.serviceMeanMs;
    case 'exponential':
      return rng.exponential(w.serviceMeanMs);
    case 'lognormal':
      return rng.lognormal(w.serviceMeanMs, w.serviceCv);
  }
}
