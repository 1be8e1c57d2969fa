import { ArteriaError } from '@arteria/protocol';
import { DEFAULT_WORKLOAD, makeWorkload, type ServiceDistribution, type Workload } from '@arteria/scaling';
import { int, num } from './args.js';

/** Flags that describe a fleet's workload, shared by `arteria plan` and `arteria simulate`. */
export const WORKLOAD_OPTIONS = {
  'procedure-share': { type: 'string' },
  'procedure-min': { type: 'string' },
  'runs-per-hour': { type: 'string' },
  'requests-per-run': { type: 'string' },
  'service-s': { type: 'string' },
  'service-cv': { type: 'string' },
  'service-dist': { type: 'string' },
  'wait-budget-s': { type: 'string' },
  epsilon: { type: 'string' },
  'startup-s': { type: 'string' },
  'day-profile': { type: 'string' },
} as const;

const d = DEFAULT_WORKLOAD;
export const WORKLOAD_HELP = `  --procedure-share <x>   day-average share of devices in a procedure (default ${d.procedureShare})
  --procedure-min <m>     mean procedure length, minutes (default ${d.procedureMeanMs / 60_000})
  --runs-per-hour <n>     runs per hour while in a procedure (default ${d.runsPerHour})
  --requests-per-run <n>  requests each run produces, arriving together (default ${d.requestsPerRun})
  --service-s <s>         mean service time per request, seconds (default ${d.serviceMeanMs / 1000})
  --service-cv <x>        service time coefficient of variation (default ${d.serviceCv})
  --service-dist <d>      lognormal | exponential | deterministic (default ${d.serviceDistribution})
  --wait-budget-s <s>     wait budget, seconds (default ${d.waitBudgetMs / 1000})
  --epsilon <p>           target P(wait > budget) (default ${d.epsilon})
  --startup-s <s|a-b>     worker start-up (node + model load), seconds, or a range each start is drawn from (default ${d.workerStartupMs / 1000})
  --day-profile <list>    24 comma-separated relative procedure shares, hour 0..23 (default: clinical day)`;

export type WorkloadValues = Partial<Record<keyof typeof WORKLOAD_OPTIONS, string>>;

export function workloadFrom(values: WorkloadValues, devices: number): Readonly<Workload> {
  const o: Partial<Workload> = { devices };
  const v = values;
  if (v['procedure-share'] !== undefined) o.procedureShare = num(v['procedure-share'], '--procedure-share');
  if (v['procedure-min'] !== undefined) o.procedureMeanMs = num(v['procedure-min'], '--procedure-min') * 60_000;
  if (v['runs-per-hour'] !== undefined) o.runsPerHour = num(v['runs-per-hour'], '--runs-per-hour');
  if (v['requests-per-run'] !== undefined) o.requestsPerRun = int(v['requests-per-run'], '--requests-per-run');
  if (v['service-s'] !== undefined) o.serviceMeanMs = num(v['service-s'], '--service-s') * 1000;
  if (v['service-cv'] !== undefined) o.serviceCv = num(v['service-cv'], '--service-cv');
  if (v['service-dist'] !== undefined) o.serviceDistribution = distribution(v['service-dist']);
  if (v['wait-budget-s'] !== undefined) o.waitBudgetMs = num(v['wait-budget-s'], '--wait-budget-s') * 1000;
  if (v.epsilon !== undefined) o.epsilon = num(v.epsilon, '--epsilon');
  // A range (45-400) plans for its slowest start; the simulator draws each start from it.
  if (v['startup-s'] !== undefined) o.workerStartupMs = startupRange(v['startup-s']).maxMs;
  if (v['day-profile'] !== undefined) o.dayProfile = v['day-profile'].split(',').map((x) => num(x, '--day-profile'));
  return makeWorkload(o);
}

export function deviceCounts(value: string): number[] {
  const counts = value.split(',').map((x) => int(x.trim(), '--devices'));
  if (counts.some((c) => c < 1)) throw new ArteriaError('CONFIG_INVALID', '--devices must be at least 1');
  return counts;
}

/** `--startup-s 120` or a range `--startup-s 45-400`. */
export function startupRange(value: string): { minMs: number; maxMs: number } {
  const [low = '', high] = value.split('-');
  const minMs = num(low, '--startup-s') * 1000;
  const maxMs = high === undefined ? minMs : num(high, '--startup-s') * 1000;
  if (maxMs < minMs) throw new ArteriaError('CONFIG_INVALID', `--startup-s range ${value} ends before it starts`);
  return { minMs, maxMs };
}

function distribution(value: string): ServiceDistribution {
  if (value === 'lognormal' || value === 'exponential' || value === 'deterministic') return value;
  throw new ArteriaError('CONFIG_INVALID', `--service-dist must be lognormal, exponential or deterministic, got ${JSON.stringify(value)}`);
}

/** A fixed-width text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
