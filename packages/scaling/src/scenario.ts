import { ArteriaPolicy, type ArteriaPolicyOptions } from './arteria-policy.js';
import { minServersMixture } from './mixture.js';
import { OraclePolicy } from './oracle-policy.js';
import { BacklogPolicy, FixedPolicy, type BacklogPolicyOptions } from './simple-policies.js';
import type { ScalingPolicy } from './signals.js';
import { simulate, SIMULATION_DEFAULTS, type SimulationOptions, type SimulationResult } from './simulator.js';
import { generateTrace, type Trace } from './trace.js';
import { erlangsPerActiveDevice, peakProcedureShare, requestRatePerActiveDevice, serviceCvOf, workloadVariability, type Workload } from './workload.js';

export type PolicyName = 'one-to-one' | 'static-peak' | 'backlog' | 'arteria' | 'oracle';
export const POLICY_NAMES: readonly PolicyName[] = ['one-to-one', 'static-peak', 'backlog', 'arteria', 'oracle'];

export interface ScenarioOptions {
  horizonMs: number;
  /** Simulated before midnight and not counted, so every policy starts the day settled. */
  warmupMs: number;
  policies: readonly PolicyName[];
  simulation: Partial<SimulationOptions>;
  arteria: Partial<ArteriaPolicyOptions>;
  backlog: Partial<BacklogPolicyOptions>;
}

export interface ScenarioResult {
  workload: Workload;
  requests: number;
  results: SimulationResult[];
}

/** Arteria's policy configured from what an operator states about the fleet. */
export function arteriaPolicyFor(w: Workload, overrides: Partial<ArteriaPolicyOptions> = {}): ArteriaPolicy {
  return new ArteriaPolicy({
    waitBudgetMs: w.waitBudgetMs,
    epsilon: w.epsilon,
    workerStartupMs: w.workerStartupMs,
    requestsPerRun: w.requestsPerRun,
    minWorkers: w.requestsPerRun,
    serviceMs: w.serviceMeanMs,
    serviceCv: serviceCvOf(w),
    requestsPerActiveDevicePerS: requestRatePerActiveDevice(w),
    procedureMeanMs: w.procedureMeanMs,
    ...overrides,
  });
}

/** One simulated day (or horizon) of a fleet under each policy, all on the same trace. */
export function runScenario(w: Workload, input: Partial<ScenarioOptions> = {}, trace?: Trace): ScenarioResult {
  const o: ScenarioOptions = { horizonMs: 86_400_000, warmupMs: 3_600_000, policies: POLICY_NAMES, simulation: {}, arteria: {}, backlog: {}, ...input };
  const sim: SimulationOptions = { ...SIMULATION_DEFAULTS, waitBudgetMs: w.waitBudgetMs, workerStartupMs: w.workerStartupMs, warmupMs: o.warmupMs, ...o.simulation };
  const t = trace ?? generateTrace(w, o.horizonMs + sim.warmupMs, sim.seed, -sim.warmupMs);
  const results = o.policies.map((name) => {
    const { policy, startupMs } = makePolicy(name, w, t, sim, o);
    return simulate(t, policy, { ...sim, workerStartupMs: startupMs });
  });
  return { workload: w, requests: t.arrivalMs.length, results };
}

/** Static peak: the mixture model at the peak hour's share, all day. */
export function staticPeakWorkers(w: Workload): number {
  return minServersMixture({
    devices: w.devices,
    procedureShare: peakProcedureShare(w),
    erlangsPerActiveDevice: erlangsPerActiveDevice(w),
    serviceMs: w.serviceMeanMs,
    waitBudgetMs: w.waitBudgetMs,
    epsilon: w.epsilon,
    variability: workloadVariability(w),
    minServers: w.requestsPerRun,
    batchSize: w.requestsPerRun,
  });
}

function makePolicy(name: PolicyName, w: Workload, trace: Trace, sim: SimulationOptions, o: ScenarioOptions): { policy: ScalingPolicy; startupMs: number } {
  switch (name) {
    case 'one-to-one':
      return { policy: new FixedPolicy('1:1', w.devices), startupMs: 0 };
    case 'static-peak':
      return { policy: new FixedPolicy('static peak', staticPeakWorkers(w)), startupMs: 0 };
    case 'backlog':
      return { policy: new BacklogPolicy(o.backlog), startupMs: sim.workerStartupMs };
    case 'arteria':
      return { policy: arteriaPolicyFor(w, o.arteria), startupMs: sim.workerStartupMs };
    case 'oracle':
      return { policy: new OraclePolicy(trace, w, sim.tickMs, w.requestsPerRun), startupMs: 0 };
  }
}
