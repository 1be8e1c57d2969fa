export {
  erlangB,
  erlangC,
  waitTailProbability,
  meanWaitMs,
  minServers,
  variabilityFactor,
  sqrtStaffing,
  halfinWhittDelayProbability,
  staffingBeta,
  normalCdf,
  type WaitTailInput,
  type StaffingInput,
} from './erlang.js';
export { binomialPmf, mixtureWaitTail, minServersMixture, type MixtureInput, type Pmf } from './mixture.js';
export {
  DEFAULT_DAY_PROFILE,
  DEFAULT_WORKLOAD,
  makeWorkload,
  requestRatePerActiveDevice,
  erlangsPerActiveDevice,
  dutyPerDevice,
  serviceCvOf,
  workloadVariability,
  procedureShareAt,
  peakProcedureShare,
  type Workload,
  type ServiceDistribution,
} from './workload.js';
export type { ScalingSignals, ScalingPolicy } from './signals.js';
export { FixedPolicy, BacklogPolicy, BACKLOG_DEFAULTS, type BacklogPolicyOptions } from './simple-policies.js';
export { ArteriaPolicy, ARTERIA_POLICY_DEFAULTS, type ArteriaPolicyOptions, type PolicyExplanation } from './arteria-policy.js';
export { OraclePolicy } from './oracle-policy.js';
export { Random } from './random.js';
export { generateTrace, type Trace } from './trace.js';
export { simulate, SIMULATION_DEFAULTS, type SimulationOptions, type SimulationResult } from './simulator.js';
export { WaitHistogram } from './wait-histogram.js';
export { plan, workersForLoad, type Plan, type PlanRow, type PlanOptions } from './planner.js';
export { runScenario, arteriaPolicyFor, staticPeakWorkers, POLICY_NAMES, type PolicyName, type ScenarioOptions, type ScenarioResult } from './scenario.js';
export { lineChartSvg, type ChartSeries, type ChartOptions } from './svg-chart.js';
