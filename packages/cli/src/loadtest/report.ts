import { z } from 'zod';
import { HISTORY_CHARTS, type ChartAssets } from '@arteria/operations';
import { type Percentiles } from '@arteria/telemetry';
import { ArteriaError, STAGES, type Stage } from '@arteria/protocol';
import type { LoadPoint } from './recorder.js';

/** The load test's JSON report (report.json); the HTML report draws the same numbers. */
export interface LoadReport {
  v: 1;
  startedAt: string;
  endedAt: string;
  target: { kind: 'embedded' | 'deployment'; mqttUrl: string; s3Endpoint: string; opsUrl: string | null };
  options: { devices: number; durationS: number; runIntervalS: number; run: { rows: number; columns: number; frames: number } };
  totals: { sent: number; ok: number; rejected: number; failed: number; errors: number; unanswered: number };
  /** Results per second over the sending period and the busiest interval. */
  throughput: { meanPerS: number; peakPerS: number };
  /** Run acquired at the gateway to result received there. */
  e2e: Percentiles | null;
  /** Each stage: time from the previous stage (acquired, uploaded, published, enqueued, leased, fetched, computed, resultPublished, received). */
  stages: ({ stage: Stage } & Percentiles)[];
  errorsByCode: Record<string, number>;
  series: { bucketMs: number; points: LoadPoint[] };
}

const PercentilesJson = z.object({ n: z.number(), meanMs: z.number(), p50Ms: z.number(), p95Ms: z.number(), p99Ms: z.number(), maxMs: z.number() });
const count = z.number().int().nonnegative();
const LoadReportJson = z.object({
  v: z.literal(1),
  startedAt: z.string(),
  endedAt: z.string(),
  target: z.object({ kind: z.enum(['embedded', 'deployment']), mqttUrl: z.string(), s3Endpoint: z.string(), opsUrl: z.string().nullable() }),
  options: z.object({ devices: count, durationS: z.number(), runIntervalS: z.number(), run: z.object({ rows: count, columns: count, frames: count }) }),
  totals: z.object({ sent: count, ok: count, rejected: count, failed: count, errors: count, unanswered: count }),
  throughput: z.object({ meanPerS: z.number(), peakPerS: z.number() }),
  e2e: PercentilesJson.nullable(),
  stages: z.array(PercentilesJson.extend({ stage: z.enum(STAGES) })),
  errorsByCode: z.record(z.string(), count),
  series: z.object({
    bucketMs: z.number().positive(),
    points: z.array(
      z.object({
        at: z.number(),
        results: z.object({ ok: count, rejected: count, failed: count }),
        throughputPerS: z.number(),
        e2e: PercentilesJson.nullable(),
        queueReady: z.number().nullable(),
        inFlight: z.number().nullable(),
        workersActual: z.number().nullable(),
        workersDesired: z.number().nullable(),
        workersBusy: z.number().nullable(),
        sent: count,
        errors: count,
      }),
    ),
  }),
});

/** A report.json read back (to draw its HTML again): CONFIG_INVALID when it is not one. */
export function parseLoadReport(json: unknown): LoadReport {
  const parsed = LoadReportJson.safeParse(json);
  if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `not a load test report: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const ms = (v: number | undefined): string => (v === undefined ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0));
const row = (cells: (string | number)[], tag = 'td'): string => `<tr>${cells.map((c) => `<${tag}>${escape(String(c))}</${tag}>`).join('')}</tr>`;

/** One self-contained HTML file: the chart library and the data inlined, nothing fetched. */
export function renderReportHtml(report: LoadReport, charts: ChartAssets): string {
  const t = report.totals;
  const p = (x: Percentiles | null): string[] => (x === null ? ['-', '-', '-', '-', '-', '0'] : [ms(x.p50Ms), ms(x.p95Ms), ms(x.p99Ms), ms(x.maxMs), ms(x.meanMs), String(x.n)]);
  const stageRows = [row(['stage', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'mean ms', 'n'], 'th'), row(['end to end', ...p(report.e2e)]), ...report.stages.map((s) => row([s.stage, ...p(s)]))].join('\n');
  const errors = Object.entries(report.errorsByCode);
  const errorRows = errors.length === 0 ? '<tr><td colspan="2">none</td></tr>' : [row(['code', 'count'], 'th'), ...errors.map(([code, n]) => row([code, n]))].join('\n');
  // JSON inside a script element: `<` escaped so no value can close it.
  const data = JSON.stringify(report).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Arteria load test ${escape(report.startedAt)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${charts.css}</style>
<style>
body { font: 14px system-ui, sans-serif; margin: 1rem 2rem; color: #222; background: #fafafa; }
h1 { font-size: 1.3rem; } h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
table { border-collapse: collapse; background: #fff; font-size: .85rem; } th, td { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: right; } th:first-child, td:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: .8rem; }
.chart { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .4rem; min-height: 250px; }
.summary { display: flex; gap: .8rem; flex-wrap: wrap; } .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; } .card b { display: block; font-size: 1.4rem; }
</style></head><body>
<h1>Arteria load test</h1>
<p>${escape(report.startedAt)} to ${escape(report.endedAt)} · ${report.options.devices} simulated devices for ${report.options.durationS} s, one run every ${report.options.runIntervalS} s each (${report.options.run.rows}×${report.options.run.columns}, ${report.options.run.frames} frames) · target ${escape(report.target.kind)} ${escape(report.target.mqttUrl)}</p>
<div class="summary">
<div class="card">runs sent<b id="sent">${t.sent}</b></div>
<div class="card">results ok / rejected / failed<b id="results">${t.ok} / ${t.rejected} / ${t.failed}</b></div>
<div class="card">errors · unanswered<b id="errors">${t.errors} · ${t.unanswered}</b></div>
<div class="card">throughput mean / peak<b id="throughput">${report.throughput.meanPerS.toFixed(2)} / ${report.throughput.peakPerS.toFixed(2)} /s</b></div>
<div class="card">end to end p50 / p95 / p99<b id="e2e">${report.e2e ? `${ms(report.e2e.p50Ms)} / ${ms(report.e2e.p95Ms)} / ${ms(report.e2e.p99Ms)} ms` : '-'}</b></div>
</div>
<h2>Over time (${report.series.bucketMs / 1000} s intervals)</h2>
<div class="charts"><div class="chart" id="chart-throughput"></div><div class="chart" id="chart-latency"></div><div class="chart" id="chart-queue"></div><div class="chart" id="chart-workers"></div></div>
<h2>Latency per stage (time from the previous stage; percentiles of every result)</h2>
<table id="stages">${stageRows}</table>
<h2>Errors by code</h2>
<table id="error-codes">${errorRows}</table>
<p>Raw numbers: report.json beside this file.</p>
<script>${charts.script}</script>
<script>
'use strict';
const REPORT = ${data};
${HISTORY_CHARTS}
// The load test's series: end-to-end as the devices measured it, workers as the target reported them.
CHART_DEFS.latency.title = 'Acquired to result received, ms';
CHART_DEFS.workers.series.push(['busy', '#7c3aed']);
const baseSeries = chartSeries;
chartSeries = (points) => { const s = baseSeries(points); s.workers.push(points.map((p) => p.workersBusy)); return s; };
drawCharts({}, 'chart-', REPORT.series.points);
document.body.dataset.drawn = 'true';
</script>
</body></html>
`;
}
