import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SimulatedFleet } from '@arteria/fleet';
import { EmbeddedPlatform, type PlatformStatus } from '@arteria/platform';
import { loadChartAssets } from '@arteria/operations';
import { type HistorySnapshot } from '@arteria/telemetry';
import { ArteriaError, toArteriaError } from '@arteria/protocol';
import { bundledAlgorithmDirs } from '../algorithms.js';
import { int, num } from '../args.js';
import { LoadRecorder, type TargetReading } from './recorder.js';
import { parseLoadReport, renderReportHtml, type LoadReport } from './report.js';

export const LOADTEST_HELP = `arteria loadtest: simulated devices against an Arteria deployment, then a report

  --devices <n>           simulated devices, each with its own gateway (default 10)
  --duration <t>          how long they send: 30s, 5m (default 60s)
  --interval-s <s>        mean seconds between one device's runs (default 2)
  --rows, --columns, --frames <n>   size of each synthetic XA run (default 64, 64, 12)
  --drain-s <s>           after sending stops, wait this long for results in flight (default 30)
  --out <dir>             where report.html and report.json go (default loadtest-<time>)
  --render <report.json>  send nothing: draw the HTML report of a report.json again, into --out
                          (default: beside it, same name with .html)

Target: an embedded platform in this process (default), or a deployment:
  --mqtt-url <url>        its broker (mqtt://, mqtts://, ws://, wss://)
  --s3-endpoint <url>     its object store; --bucket <name> (default arteria-runs), --s3-region
  --tenant <id>           the tenant the devices belong to (default demo)
  tenant secret: ARTERIA_TENANT_SECRET (the tenant's provisioning secret; devices' tokens derive from it)
  object store: upload grants from the platform; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    only for a deployment that still hands out bucket-wide keys (development)
  --ops-url <url>         its dashboard or ops HTTP surface, for queue and workers over time;
                          token: ARTERIA_HTTP_TOKEN (the operator token)`;

/** Parses 30s, 5m, 1h or plain seconds. */
export function durationMs(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m?.[1]) throw new ArteriaError('CONFIG_INVALID', `${flag} must be a duration such as 30s, 5m or 1h, got ${JSON.stringify(value)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * unit;
}

/** Draws a saved report.json's HTML again (after the renderer changed, or on another machine); returns its path. */
async function renderReportFile(jsonPath: string, outDir: string | undefined): Promise<string> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `--render ${jsonPath}: ${toArteriaError(err).message}`);
  }
  const report = parseLoadReport(json);
  const html = path.join(path.resolve(outDir ?? path.dirname(jsonPath)), `${path.basename(jsonPath, '.json')}.html`);
  await mkdir(path.dirname(html), { recursive: true });
  await writeFile(html, renderReportHtml(report, await loadChartAssets()));
  return html;
}

interface Target {
  kind: 'embedded' | 'deployment';
  mqttUrl: string;
  s3: { endpoint: string; bucket: string; region: string; accessKeyId?: string; secretAccessKey?: string };
  tenant: string;
  tenantSecret: string;
  ops?: { url: string; token: string };
  close(): Promise<void>;
}

export async function loadtestCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      devices: { type: 'string', default: '10' },
      duration: { type: 'string', default: '60s' },
      'interval-s': { type: 'string', default: '2' },
      rows: { type: 'string', default: '64' },
      columns: { type: 'string', default: '64' },
      frames: { type: 'string', default: '12' },
      'drain-s': { type: 'string', default: '30' },
      out: { type: 'string' },
      'mqtt-url': { type: 'string' },
      's3-endpoint': { type: 'string' },
      bucket: { type: 'string', default: 'arteria-runs' },
      's3-region': { type: 'string', default: 'us-east-1' },
      tenant: { type: 'string', default: 'demo' },
      'ops-url': { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${LOADTEST_HELP}\n`);
    return 0;
  }
  if (values.render !== undefined) {
    const html = await renderReportFile(values.render, values.out);
    process.stdout.write(`report: ${html}\n`);
    return 0;
  }
  const devices = int(values.devices, '--devices');
  const sendMs = durationMs(values.duration, '--duration');
  const intervalS = num(values['interval-s'], '--interval-s');
  const run = { rows: int(values.rows, '--rows'), columns: int(values.columns, '--columns'), frames: int(values.frames, '--frames') };
  const out = path.resolve(values.out ?? `loadtest-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const work = await mkdtemp(path.join(tmpdir(), 'arteria-loadtest-'));
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const target = values['mqtt-url'] === undefined ? await embeddedTarget(work) : deploymentTarget(values, env);
  // Intervals short enough for a short test to draw a line, at most ~120 points for a long one.
  const recorder = new LoadRecorder(Math.max(1000, Math.ceil(sendMs / 120 / 1000) * 1000));
  let fleet: SimulatedFleet | undefined;
  let poller: NodeJS.Timeout | undefined;
  try {
    log(`loadtest: ${devices} devices for ${sendMs / 1000} s against ${target.kind} ${target.mqttUrl}${target.ops ? ` (ops ${target.ops.url})` : ''}`);
    fleet = await SimulatedFleet.start(
      {
        devices,
        tenant: target.tenant,
        tenantSecret: target.tenantSecret,
        mqttUrl: target.mqttUrl,
        s3: target.s3,
        dataDir: path.join(work, 'fleet'),
        run,
        // Every device in a procedure for the whole test, sending at its mean interval.
        profile: { meanIdleMs: 1, meanProcedureMs: 1e12, meanRunIntervalMs: intervalS * 1000 },
      },
      { onResult: (_device, result) => recorder.result(result), onError: (_device, error) => recorder.error(error) },
      { info: () => undefined, warn: () => undefined, error: (message: string) => log(`gateway: ${message}`) },
    );
    const started = Date.now();
    const running = fleet;
    let lastSent = 0;
    poller = setInterval(() => {
      const s = running.stats();
      for (; lastSent < s.sent; lastSent++) recorder.sent();
      const ops = target.ops;
      if (ops !== undefined) readTarget(ops).then((r) => recorder.reading(r), (err: unknown) => log(`ops: ${toArteriaError(err).message}`));
      const t = recorder.totals;
      const e2e = recorder.points().at(-2)?.e2e;
      log(`  ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  sent ${s.sent}  ok ${t.ok}  rejected ${t.rejected}  failed ${t.failed}  errors ${t.errors}  in flight ${s.inFlight}${e2e ? `  p50 ${e2e.p50Ms.toFixed(0)} ms  p99 ${e2e.p99Ms.toFixed(0)} ms` : ''}`);
    }, 1000);
    await new Promise((resolve) => setTimeout(resolve, sendMs));
    const sendingEnded = Date.now();
    log(`loadtest: sending stopped; waiting up to ${values['drain-s']} s for ${fleet.stats().inFlight} results in flight`);
    await fleet.stopSending(num(values['drain-s'], '--drain-s') * 1000);
    clearInterval(poller);
    const final = fleet.stats();
    for (; lastSent < final.sent; lastSent++) recorder.sent();
    const report = buildReport(recorder, target, { devices, durationS: sendMs / 1000, runIntervalS: intervalS, run }, sendingEnded, final.inFlight);
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(path.join(out, 'report.html'), renderReportHtml(report, await loadChartAssets()));
    const t = report.totals;
    process.stdout.write(
      `sent ${t.sent}, ok ${t.ok}, rejected ${t.rejected}, failed ${t.failed}, errors ${t.errors}, unanswered ${t.unanswered}; ` +
        `${report.throughput.meanPerS.toFixed(2)} results/s; end to end p50 ${report.e2e?.p50Ms.toFixed(0) ?? '-'} ms, p99 ${report.e2e?.p99Ms.toFixed(0) ?? '-'} ms\n` +
        `report: ${path.join(out, 'report.html')}\n        ${path.join(out, 'report.json')}\n`,
    );
    return t.errors + t.failed + t.unanswered === 0 ? 0 : 1;
  } finally {
    clearInterval(poller);
    await fleet?.close();
    await target.close();
    await rm(work, { recursive: true, force: true });
  }
}

function buildReport(recorder: LoadRecorder, target: Target, options: LoadReport['options'], sendingEnded: number, unanswered: number): LoadReport {
  const points = recorder.points();
  const results = (p: (typeof points)[number]): number => p.results.ok + p.results.rejected + p.results.failed;
  // Mean over the whole test, to the interval of the last answer: on a slow target the
  // answers to the last runs arrive after sending stopped, and they count too.
  const answered = points.filter((p) => results(p) > 0);
  const lastAnswerEnd = Math.max(sendingEnded, (answered.at(-1)?.at ?? 0) + recorder.bucketMs);
  const t = recorder.totals;
  return {
    v: 1,
    startedAt: new Date(recorder.startedAt).toISOString(),
    endedAt: new Date().toISOString(),
    target: { kind: target.kind, mqttUrl: target.mqttUrl, s3Endpoint: target.s3.endpoint, opsUrl: target.ops?.url ?? null },
    options,
    totals: { ...t, unanswered },
    throughput: {
      meanPerS: (answered.reduce((n, p) => n + results(p), 0) * 1000) / Math.max(1, lastAnswerEnd - recorder.startedAt),
      peakPerS: Math.max(0, ...points.map((p) => p.throughputPerS)),
    },
    e2e: recorder.e2e(),
    stages: recorder.stages(),
    errorsByCode: recorder.errorsByCode(),
    series: { bucketMs: recorder.bucketMs, points },
  };
}

async function readTarget(ops: { url: string; token: string }): Promise<TargetReading> {
  const get = async <T>(p: string): Promise<T> => {
    const res = await fetch(new URL(p, ops.url), { headers: { authorization: `Bearer ${ops.token}` } });
    if (!res.ok) throw new ArteriaError('CONFIG_INVALID', `${ops.url}${p} answered ${res.status}${res.status === 401 ? ': set ARTERIA_HTTP_TOKEN to the operator token' : ''}`);
    return (await res.json()) as T;
  };
  const status = await get<Pick<PlatformStatus, 'queue'> & { workers: { size: number | null; busy: number } }>('/api/status');
  // The newest history point with a reading carries the autoscaler's wish (embedded: its own; cluster: the roster's).
  const history = await get<HistorySnapshot | null>('/api/history').catch(() => null);
  const desired = history?.points.findLast((p) => p.workersDesired !== null)?.workersDesired ?? null;
  // Actual in the same unit as desired: a cluster's history counts worker processes (its status counts slots).
  const actual = history?.points.findLast((p) => p.workersActual !== null)?.workersActual ?? status.workers.size;
  return { queueReady: status.queue.ready, inFlight: status.queue.inFlight, workersActual: actual, workersBusy: status.workers.busy, workersDesired: desired };
}

async function embeddedTarget(work: string): Promise<Target> {
  const tenantSecret = 'loadtest-tenant-secret-0123456789';
  const platform = await EmbeddedPlatform.start({
    mqttPort: 0,
    s3Port: 0,
    httpPort: 0,
    dataDir: path.join(work, 'platform'),
    tenants: { demo: tenantSecret },
    algorithmDirs: bundledAlgorithmDirs(),
    // One-second history, so the report's worker and queue series have a point each second.
    history: { bucketMs: 1000 },
  });
  return {
    kind: 'embedded',
    mqttUrl: platform.mqttUrl,
    // No store keys: the simulated gateways ask for upload grants, as real ones do.
    s3: { endpoint: platform.s3Endpoint, bucket: platform.options.bucket, region: 'us-east-1' },
    tenant: 'demo',
    tenantSecret,
    ops: { url: platform.http.url, token: platform.options.opsToken },
    close: () => platform.close(),
  };
}

function deploymentTarget(values: { 'mqtt-url'?: string | undefined; 's3-endpoint'?: string | undefined; bucket: string; 's3-region': string; tenant: string; 'ops-url'?: string | undefined }, env: NodeJS.ProcessEnv): Target {
  const need = (value: string | undefined, what: string): string => {
    if (value === undefined || value === '') throw new ArteriaError('CONFIG_INVALID', `a load test against a deployment needs ${what}`);
    return value;
  };
  const opsUrl = values['ops-url'];
  return {
    kind: 'deployment',
    mqttUrl: need(values['mqtt-url'], '--mqtt-url'),
    s3: {
      endpoint: need(values['s3-endpoint'], '--s3-endpoint'),
      bucket: values.bucket,
      region: values['s3-region'],
      // Bucket-wide keys only where the deployment still runs in development mode.
      ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } : {}),
    },
    tenant: values.tenant,
    tenantSecret: need(env.ARTERIA_TENANT_SECRET, 'ARTERIA_TENANT_SECRET (the tenant\'s provisioning secret)'),
    ...(opsUrl !== undefined ? { ops: { url: opsUrl, token: need(env.ARTERIA_HTTP_TOKEN, 'ARTERIA_HTTP_TOKEN with --ops-url') } } : {}),
    close: () => Promise.resolve(),
  };
}
