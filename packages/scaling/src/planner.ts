import { minServers, staffingBeta } from './erlang.js';
import { minServersMixture } from './mixture.js';
import { dutyPerDevice, erlangsPerActiveDevice, peakProcedureShare, procedureShareAt, workloadVariability, type Workload } from './workload.js';

export interface PlanRow {
  policy: string;
  peakWorkers: number;
  /** Day-average workers (worker-hours / 24). */
  meanWorkers: number;
  /** 1:1 worker-hours divided by this row's. */
  savingVsOneToOne: number;
}

export interface Plan {
  devices: number;
  dutyPerDevice: number;
  meanLoadErlangs: number;
  peakLoadErlangs: number;
  /** Square-root staffing coefficient at the peak: c = A + beta sqrt(A). */
  peakBeta: number;
  rows: PlanRow[];
}

export interface PlanOptions {
  /** Utilization the linear rule holds (HPA's customary 70 %). */
  linearUtilization: number;
  /** Hour steps to average the day over. */
  stepsPerDay: number;
  minWorkers: number;
}

const DEFAULTS: PlanOptions = { linearUtilization: 0.7, stepsPerDay: 24, minWorkers: 1 };

/**
 * Workers needed for a fleet by four rules. Arteria's figure is the mixture model at each
 * step of the day (the count of devices in a procedure is binomial around the profile),
 * plus the growth of that count over one worker start-up at the steepest morning ramp.
 */
export function plan(w: Workload, input: Partial<PlanOptions> = {}): Plan {
  const o = { ...DEFAULTS, ...input };
  const a1 = erlangsPerActiveDevice(w);
  const variability = workloadVariability(w);
  const base = { devices: w.devices, erlangsPerActiveDevice: a1, serviceMs: w.serviceMeanMs, waitBudgetMs: w.waitBudgetMs, variability, epsilon: w.epsilon, minServers: o.minWorkers, batchSize: w.requestsPerRun };
  const stepMs = 86_400_000 / o.stepsPerDay;
  let arteriaSum = 0;
  let arteriaPeak = 0;
  let linearSum = 0;
  let linearPeak = 0;
  for (let i = 0; i < o.stepsPerDay; i += 1) {
    const t = (i + 0.5) * stepMs;
    const p = procedureShareAt(w, t);
    // Growth of the in-procedure share over one start-up, at this hour's slope.
    const dp = Math.max(0, procedureShareAt(w, t + w.workerStartupMs) - p);
    const c = minServersMixture({ ...base, procedureShare: Math.min(0.999, p + dp) });
    arteriaSum += c;
    arteriaPeak = Math.max(arteriaPeak, c);
    const linear = Math.max(o.minWorkers, Math.ceil((w.devices * p * a1) / o.linearUtilization));
    linearSum += linear;
    linearPeak = Math.max(linearPeak, linear);
  }
  const peakShare = peakProcedureShare(w);
  const staticPeak = minServersMixture({ ...base, procedureShare: peakShare });
  const peakLoad = w.devices * peakShare * a1;
  const rows: PlanRow[] = [
    row('1:1', w.devices, w.devices, w.devices),
    row('linear backlog rule', linearPeak, linearSum / o.stepsPerDay, w.devices),
    row('static peak', staticPeak, staticPeak, w.devices),
    row('arteria', arteriaPeak, arteriaSum / o.stepsPerDay, w.devices),
  ];
  return {
    devices: w.devices,
    dutyPerDevice: dutyPerDevice(w),
    meanLoadErlangs: w.devices * dutyPerDevice(w),
    peakLoadErlangs: peakLoad,
    peakBeta: staffingBeta({ loadErlangs: peakLoad, serviceMs: w.serviceMeanMs, waitBudgetMs: w.waitBudgetMs, epsilon: w.epsilon, variability }),
    rows,
  };
}

/** Workers for one constant load (no day profile): the model alone. */
export function workersForLoad(w: Workload, loadErlangs: number): number {
  return minServers({ loadErlangs, serviceMs: w.serviceMeanMs, waitBudgetMs: w.waitBudgetMs, epsilon: w.epsilon, variability: workloadVariability(w), batchSize: w.requestsPerRun });
}

function row(policy: string, peakWorkers: number, meanWorkers: number, devices: number): PlanRow {
  return { policy, peakWorkers, meanWorkers, savingVsOneToOne: meanWorkers > 0 ? devices / meanWorkers : Infinity };
}
