import { ArteriaError } from '@arteria/protocol';
import { variabilityFactor } from './erlang.js';

export type ServiceDistribution = 'exponential' | 'deterministic' | 'lognormal';

/** What a fleet asks of the workers; shared by the planner and the simulator. */
export interface Workload {
  devices: number;
  /** Day-average share of devices in a procedure. */
  procedureShare: number;
  /** Mean procedure length, ms. */
  procedureMeanMs: number;
  /** Runs a device acquires per hour while in a procedure. */
  runsPerHour: number;
  /** Requests each run produces (they arrive together: a batch). */
  requestsPerRun: number;
  serviceMeanMs: number;
  /** Coefficient of variation of the service time (ignored for deterministic/exponential). */
  serviceCv: number;
  serviceDistribution: ServiceDistribution;
  /** Relative share of devices in a procedure per hour of the day (24 values, any scale). */
  dayProfile: readonly number[];
  waitBudgetMs: number;
  /** Target P(wait > waitBudgetMs). */
  epsilon: number;
  /** Node start plus model load before a new worker takes work, ms. */
  workerStartupMs: number;
}

/** Clinical days: procedures cluster in working hours, few at night. */
export const DEFAULT_DAY_PROFILE: readonly number[] = Object.freeze([
  0.06, 0.05, 0.04, 0.04, 0.05, 0.08, 0.2, 0.5, 0.85, 1, 1, 0.95, 0.85, 0.9, 1, 0.95, 0.8, 0.6, 0.4, 0.25, 0.18, 0.13, 0.1, 0.08,
]);

/** 1 % average duty per device: 0.25 x 24 runs/h x 2 requests x 3 s / 3600 s. */
export const DEFAULT_WORKLOAD: Readonly<Workload> = Object.freeze({
  devices: 10_000,
  procedureShare: 0.25,
  procedureMeanMs: 45 * 60_000,
  runsPerHour: 24,
  requestsPerRun: 2,
  serviceMeanMs: 3_000,
  serviceCv: 0.5,
  serviceDistribution: 'lognormal',
  dayProfile: DEFAULT_DAY_PROFILE,
  waitBudgetMs: 2_000,
  epsilon: 1e-4,
  workerStartupMs: 120_000,
});

export function makeWorkload(overrides: Partial<Workload> = {}): Readonly<Workload> {
  const w: Workload = { ...DEFAULT_WORKLOAD, ...overrides };
  const bad = (field: string, why: string): never => {
    throw new ArteriaError('CONFIG_INVALID', `workload ${field} ${why}`);
  };
  if (!Number.isInteger(w.devices) || w.devices < 1) bad('devices', 'must be a whole number >= 1');
  if (!(w.procedureShare > 0 && w.procedureShare < 1)) bad('procedureShare', 'must be in (0, 1)');
  if (!(w.procedureMeanMs > 0)) bad('procedureMeanMs', 'must be positive');
  if (!(w.runsPerHour > 0)) bad('runsPerHour', 'must be positive');
  if (!Number.isInteger(w.requestsPerRun) || w.requestsPerRun < 1) bad('requestsPerRun', 'must be a whole number >= 1');
  if (!(w.serviceMeanMs > 0)) bad('serviceMeanMs', 'must be positive');
  if (!(w.serviceCv >= 0)) bad('serviceCv', 'must be >= 0');
  if (w.dayProfile.length !== 24 || w.dayProfile.some((x) => !(x >= 0)) || !w.dayProfile.some((x) => x > 0)) bad('dayProfile', 'must hold 24 values >= 0, not all 0');
  if (!(w.waitBudgetMs >= 0)) bad('waitBudgetMs', 'must be >= 0');
  if (!(w.epsilon > 0 && w.epsilon < 1)) bad('epsilon', 'must be in (0, 1)');
  if (!(w.workerStartupMs >= 0)) bad('workerStartupMs', 'must be >= 0');
  const peak = peakProcedureShare(w);
  if (peak >= 1) bad('procedureShare', `puts ${(peak * 100).toFixed(0)} % of devices in a procedure at the peak hour; lower it or flatten dayProfile`);
  return Object.freeze(w);
}

/** Requests per second from one device while in a procedure. */
export function requestRatePerActiveDevice(w: Workload): number {
  return (w.runsPerHour * w.requestsPerRun) / 3600;
}

/** Erlangs offered by one device while in a procedure. */
export function erlangsPerActiveDevice(w: Workload): number {
  return (requestRatePerActiveDevice(w) * w.serviceMeanMs) / 1000;
}

/** Day-average Erlangs per device (the duty of a dedicated worker). */
export function dutyPerDevice(w: Workload): number {
  return w.procedureShare * erlangsPerActiveDevice(w);
}

export function serviceCvOf(w: Workload): number {
  if (w.serviceDistribution === 'deterministic') return 0;
  if (w.serviceDistribution === 'exponential') return 1;
  return w.serviceCv;
}

export function workloadVariability(w: Workload): number {
  return variabilityFactor({ serviceCv: serviceCvOf(w), requestsPerRun: w.requestsPerRun });
}

/** Share of devices in a procedure at `timeMs` after midnight (profile interpolated linearly, mean = procedureShare). */
export function procedureShareAt(w: Workload, timeMs: number): number {
  const mean = w.dayProfile.reduce((s, x) => s + x, 0) / 24;
  const h = (((timeMs / 3_600_000) % 24) + 24) % 24;
  const i = Math.floor(h);
  const f = h - i;
  const x = (w.dayProfile[i] ?? 0) * (1 - f) + (w.dayProfile[(i + 1) % 24] ?? 0) * f;
  return (w.procedureShare * x) / mean;
}

export function peakProcedureShare(w: Workload): number {
  const mean = w.dayProfile.reduce((s, x) => s + x, 0) / 24;
  return (w.procedureShare * Math.max(...w.dayProfile)) / mean;
}
