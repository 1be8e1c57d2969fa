import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ArteriaError } from '@arteria/protocol';
import { lineChartSvg, POLICY_NAMES, runScenario, type PolicyName, type ScenarioResult, type SimulationResult } from '@arteria/scaling';
import { int, num } from './args.js';
import { WORKLOAD_HELP, WORKLOAD_OPTIONS, deviceCounts, table, workloadFrom, startupRange } from './workload-args.js';

export const SIMULATE_HELP = `arteria simulate: a simulated fleet day under each scaling policy, side by side

  --devices <n[,n...]>    fleet size(s) (default 10000)
  --days <n>              simulated days (default 1)
  --policies <list>       any of ${POLICY_NAMES.join(',')} (default: all)
  --seed <n>              random seed (default 1)
  --tick-s <s>            control period of the policies, seconds (default 10)
  --failures <x>          worker crashes per worker-hour (default 0.0005)
${WORKLOAD_HELP}
  --plot <file.svg>       also write workers over the first day, per policy (largest fleet)
  --json                  print the results as JSON`;

export async function simulateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...WORKLOAD_OPTIONS,
      devices: { type: 'string', default: '10000' },
      days: { type: 'string', default: '1' },
      policies: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'tick-s': { type: 'string', default: '10' },
      failures: { type: 'string' },
      plot: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${SIMULATE_HELP}\n`);
    return 0;
  }
  const days = num(values.days, '--days');
  const policies = values.policies === undefined ? POLICY_NAMES : policyList(values.policies);
  const scenarios: { scenario: ScenarioResult; seconds: number }[] = [];
  for (const devices of deviceCounts(values.devices)) {
    const w = workloadFrom(values, devices);
    const started = performance.now();
    const scenario = runScenario(w, {
      horizonMs: days * 86_400_000,
      policies,
      simulation: {
        seed: int(values.seed, '--seed'),
        tickMs: num(values['tick-s'], '--tick-s') * 1000,
        ...(values.failures !== undefined && { failuresPerWorkerHour: num(values.failures, '--failures') }),
        ...(values['startup-s'] !== undefined && (({ minMs, maxMs }) => ({ workerStartupMs: minMs, workerStartupSpreadMs: maxMs - minMs }))(startupRange(values['startup-s']))),
      },
    });
    const seconds = (performance.now() - started) / 1000;
    scenarios.push({ scenario, seconds });
    if (!values.json) process.stdout.write(`${formatScenario(scenario, days, seconds)}\n\n`);
  }
  if (values.json) {
    const plain = scenarios.map(({ scenario, seconds }) => ({
      devices: scenario.workload.devices,
      days,
      requests: scenario.requests,
      seconds,
      results: scenario.results.map(({ workersPerTick: _w, devicesPerTick: _d, violationArrivalsMs: _v, ...rest }) => rest),
    }));
    process.stdout.write(`${JSON.stringify(plain, null, 2)}\n`);
  }
  const last = scenarios.at(-1)?.scenario;
  if (values.plot !== undefined && last) {
    await writeFile(values.plot, dayChart(last, num(values['tick-s'], '--tick-s')));
    process.stdout.write(`wrote ${values.plot}\n`);
  }
  return 0;
}

export function formatScenario(s: ScenarioResult, days: number, seconds: number): string {
  const w = s.workload;
  const by = (name: string): SimulationResult | undefined => s.results.find((r) => r.policy === name);
  const one = by('1:1');
  const oracle = by('oracle');
  const budget = `P(wait>${w.waitBudgetMs / 1000}s)`;
  const rows = s.results.map((r) => [
    r.policy,
    (r.workerHours / days).toFixed(0),
    one ? `${(one.workerHours / r.workerHours).toFixed(1)}x` : '-',
    oracle ? `${(r.workerHours / oracle.workerHours).toFixed(2)}x` : '-',
    r.meanWorkers.toFixed(1),
    String(r.peakWorkers),
    r.pWaitOverBudget.toExponential(1),
    String(r.violations),
    `${(r.maxWaitMs / 1000).toFixed(1)}s`,
    String(r.drops),
  ]);
  const head = `${w.devices.toLocaleString('en-US')} devices, ${days} day(s), ${s.requests.toLocaleString('en-US')} requests, simulated in ${seconds.toFixed(1)} s`;
  const lines = [head, table(['policy', 'worker-h/day', 'vs 1:1 (less)', 'vs oracle', 'mean', 'peak', budget, 'violations', 'max wait', 'drops'], rows)];
  const arteria = by('arteria');
  const backlog = by('backlog rule');
  if (arteria) {
    const check = (ok: boolean, text: string): string => `  ${ok ? 'met    ' : 'NOT MET'}  ${text}`;
    lines.push(check(arteria.pWaitOverBudget <= w.epsilon, `arteria ${budget} = ${arteria.pWaitOverBudget.toExponential(2)} <= ${w.epsilon}`));
    lines.push(check(arteria.drops === 0, `arteria drops = ${arteria.drops}`));
    if (one) lines.push(`  ${' '.repeat(7)}  arteria uses ${(one.workerHours / arteria.workerHours).toFixed(1)}x fewer worker-hours than 1:1`);
    if (oracle) lines.push(`  ${' '.repeat(7)}  arteria uses ${(arteria.workerHours / oracle.workerHours).toFixed(3)}x the oracle's worker-hours`);
    if (backlog) {
      lines.push(
        check(
          arteria.violations < backlog.violations && arteria.workerHours <= backlog.workerHours,
          `fewer violations than the backlog rule (${arteria.violations} vs ${backlog.violations}) at equal or lower cost (${(arteria.workerHours / days).toFixed(0)} vs ${(backlog.workerHours / days).toFixed(0)} worker-h/day)`,
        ),
      );
    }
  }
  return lines.join('\n');
}

function dayChart(s: ScenarioResult, tickS: number): string {
  const perHour = 3600 / tickS;
  const series = s.results
    .filter((r) => r.policy !== '1:1')
    .map((r) => ({
      name: r.policy,
      dashed: r.policy === 'oracle',
      points: Array.from({ length: Math.min(r.workersPerTick.length, 24 * perHour) }, (_, i) => [i / perHour, r.workersPerTick[i] ?? 0] as const).filter((_, i) => i % 6 === 0),
    }));
  return lineChartSvg(series, {
    title: `Workers over a simulated day, ${s.workload.devices.toLocaleString('en-US')} devices`,
    xLabel: 'hour of day',
    yLabel: 'workers',
    xTick: (h) => `${h}:00`,
  });
}

function policyList(value: string): PolicyName[] {
  return value.split(',').map((p) => {
    const name = p.trim();
    const known = POLICY_NAMES.find((n) => n === name);
    if (!known) throw new ArteriaError('CONFIG_INVALID', `--policies: unknown policy ${JSON.stringify(name)} (known: ${POLICY_NAMES.join(', ')})`);
    return known;
  });
}
