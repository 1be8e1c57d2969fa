import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { lineChartSvg, plan, type Plan, type Workload } from '@arteria/scaling';
import { WORKLOAD_HELP, WORKLOAD_OPTIONS, deviceCounts, table, workloadFrom } from './workload-args.js';

export const PLAN_HELP = `arteria plan: workers needed for a fleet, by four scaling rules

  --devices <n[,n...]>    fleet size(s) (default 10000)
${WORKLOAD_HELP}
  --plot <file.svg>       also write workers vs devices (1..20,000) for each rule
  --json                  print the plan as JSON`;

export async function planCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { ...WORKLOAD_OPTIONS, devices: { type: 'string', default: '10000' }, plot: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    process.stdout.write(`${PLAN_HELP}\n`);
    return 0;
  }
  const plans = deviceCounts(values.devices).map((n) => plan(workloadFrom(values, n)));
  if (values.json) process.stdout.write(`${JSON.stringify(plans, null, 2)}\n`);
  else for (const p of plans) process.stdout.write(`${formatPlan(p, workloadFrom(values, p.devices))}\n\n`);
  if (values.plot !== undefined) {
    await writeFile(values.plot, planChart(workloadFrom(values, 1)));
    process.stdout.write(`wrote ${values.plot}\n`);
  }
  return 0;
}

export function formatPlan(p: Plan, w: Workload): string {
  const head =
    `${p.devices.toLocaleString('en-US')} devices: ${(p.dutyPerDevice * 100).toFixed(2)} % duty each, ` +
    `load ${p.meanLoadErlangs.toFixed(1)} Erlangs on average, ${p.peakLoadErlangs.toFixed(1)} at the peak hour ` +
    `(P(wait > ${w.waitBudgetMs / 1000} s) <= ${w.epsilon}, start-up ${w.workerStartupMs / 1000} s; peak beta ${p.peakBeta.toFixed(2)})`;
  const rows = p.rows.map((r) => [r.policy, String(r.peakWorkers), r.meanWorkers.toFixed(1), (r.meanWorkers * 24).toFixed(0), `${r.savingVsOneToOne.toFixed(1)}x`]);
  return `${head}\n${table(['rule', 'peak workers', 'mean workers', 'worker-h/day', 'vs 1:1'], rows)}`;
}

/** Mean workers vs fleet size, log-log, 1..20,000 devices. */
export function planChart(base: Workload): string {
  const sizes = [...new Set(Array.from({ length: 33 }, (_, i) => Math.round(10 ** ((i / 32) * Math.log10(20_000)))))];
  const plans = sizes.map((n) => plan({ ...base, devices: n }));
  const series = ['1:1', 'static peak', 'linear backlog rule', 'arteria'].map((name) => ({
    name: name === 'arteria' ? 'arteria (mean)' : name,
    dashed: name === '1:1',
    points: plans.map((p) => [p.devices, p.rows.find((r) => r.policy === name)?.meanWorkers ?? NaN] as const),
  }));
  series.push({ name: 'arteria (peak)', dashed: true, points: plans.map((p) => [p.devices, p.rows.find((r) => r.policy === 'arteria')?.peakWorkers ?? NaN] as const) });
  return lineChartSvg(series, { title: 'Workers needed vs fleet size', xLabel: 'devices', yLabel: 'workers (day average)', xLog: true, yLog: true });
}
