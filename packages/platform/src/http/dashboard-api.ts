import type { ServerResponse } from 'node:http';
import { STAGES, type Stage } from '@arteria/protocol';
import type { DeviceRecord } from '../devices/device-directory.js';
import type { DeadLetterView } from '../dlq/dead-letter-desk.js';
import type { LedgerEntry } from '../ledger/index.js';
import type { RefusalSummary } from '../ingest/refusal-log.js';
import type { PlatformMetrics } from '../metrics/metrics.js';
import { DASHBOARD_HTML, DASHBOARD_SCRIPT } from './dashboard-page.js';

/** What the dashboard reads; the embedded platform and `arteria dashboard` each provide it. */
export interface DashboardData {
  devices(): DeviceRecord[];
  recent(limit: number): Promise<LedgerEntry[]>;
  latency(): Promise<StageLatency[]>;
  /** Requests refused at admission; absent where this process does not admit requests (a cluster's dashboard). */
  refusals?(limit: number): RefusalSummary;
  /** The queue's dead letters, newest first (read-only: replay is `arteria dlq replay`). */
  deadLetters?(limit: number): Promise<DeadLetterView[]>;
}

/** One stage's latency histogram (time from the previous stage), cumulative buckets as Prometheus keeps them. */
export interface StageLatency {
  stage: Stage;
  count: number;
  sumMs: number;
  buckets: { leMs: number; count: number }[];
}

/** One row of recent results; missing values are null so every row has every key in JSON. */
export interface ResultRow {
  requestId: string;
  tenant: string;
  device: string;
  /** `name@version` that ran, else the requested spec. */
  algorithm: string;
  status: 'accepted' | 'ok' | 'rejected' | 'failed';
  errorCode: string | null;
  completedAt: number | null;
  /** Device publish (or upload) to result published. */
  e2eMs: number | null;
  /** Time from the previous stage to each stage. */
  stagesMs: Partial<Record<Stage, number>>;
}

/** The same buckets as the platform's histograms, in ms. */
const BUCKETS_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000];
const MAX_ROWS = 200;

/** `?limit=` of a list endpoint: 1..MAX_ROWS, 20 when absent or unreadable. */
const limitParam = (query: URLSearchParams): number => Math.min(MAX_ROWS, Math.max(1, Number.parseInt(query.get('limit') ?? '20', 10) || 20));

export function resultRow(entry: LedgerEntry): ResultRow {
  const result = entry.result;
  const t = result?.timings ?? entry.request?.timings ?? {};
  const stagesMs: Partial<Record<Stage, number>> = {};
  let previous: number | undefined;
  for (const stage of STAGES) {
    const at = t[stage];
    if (at === undefined) continue;
    if (previous !== undefined) stagesMs[stage] = Math.max(0, at - previous);
    previous = at;
  }
  const start = t.published ?? t.uploaded;
  return {
    requestId: entry.requestId,
    tenant: entry.tenant,
    device: entry.device,
    algorithm: result?.algorithm ? `${result.algorithm.name}@${result.algorithm.version}` : (entry.algorithm ?? ''),
    status: entry.state === 'completed' ? entry.status : 'accepted',
    errorCode: result?.error?.code ?? null,
    completedAt: entry.completedAt ?? null,
    e2eMs: start !== undefined && t.resultPublished !== undefined ? Math.max(0, t.resultPublished - start) : null,
    stagesMs,
  };
}

/** Stage histograms from the platform's own Prometheus histogram (embedded: every result it published). */
export async function latencyFromMetrics(metrics: PlatformMetrics): Promise<StageLatency[]> {
  const values = (await metrics.stage.get()).values;
  const out = new Map<string, StageLatency>();
  const of = (stage: string): StageLatency => {
    let s = out.get(stage);
    if (!s) out.set(stage, (s = { stage: stage as Stage, count: 0, sumMs: 0, buckets: [] }));
    return s;
  };
  for (const v of values) {
    const labels = v.labels as Partial<Record<'stage' | 'le', string | number>>;
    const stage = labels.stage;
    if (typeof stage !== 'string') continue;
    const name = (v as { metricName?: string }).metricName ?? '';
    if (name.endsWith('_count')) of(stage).count = v.value;
    else if (name.endsWith('_sum')) of(stage).sumMs = v.value * 1000;
    else if (name.endsWith('_bucket') && labels.le !== '+Inf') of(stage).buckets.push({ leMs: Number(labels.le) * 1000, count: v.value });
  }
  return STAGES.flatMap((stage) => out.get(stage) ?? []);
}

/** Stage histograms from recent ledger results (a cluster: results come from many workers). */
export function latencyFromResults(entries: readonly LedgerEntry[]): StageLatency[] {
  const out = new Map<Stage, StageLatency>();
  for (const entry of entries) {
    if (entry.state !== 'completed') continue;
    for (const [stage, ms] of Object.entries(resultRow(entry).stagesMs) as [Stage, number][]) {
      let s = out.get(stage);
      if (!s) out.set(stage, (s = { stage, count: 0, sumMs: 0, buckets: BUCKETS_MS.map((leMs) => ({ leMs, count: 0 })) }));
      s.count += 1;
      s.sumMs += ms;
      for (const b of s.buckets) if (ms <= b.leMs) b.count += 1;
    }
  }
  return STAGES.flatMap((stage) => out.get(stage) ?? []);
}

const json = (res: ServerResponse, body: unknown): void => {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

/** Serves the page and its JSON endpoints; false when the path is not the dashboard's. */
export async function serveDashboard(data: DashboardData, path: string, query: URLSearchParams, res: ServerResponse): Promise<boolean> {
  switch (path) {
    case '/':
    case '/index.html':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'" });
      res.end(DASHBOARD_HTML);
      return true;
    case '/dashboard.js':
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      res.end(DASHBOARD_SCRIPT);
      return true;
    case '/api/devices':
      json(res, { devices: data.devices().sort((a, b) => b.lastSeen - a.lastSeen) });
      return true;
    case '/api/results': {
      const limit = limitParam(query);
      json(res, { results: (await data.recent(limit)).map(resultRow) });
      return true;
    }
    case '/api/latency':
      json(res, { stages: await data.latency() });
      return true;
    case '/api/refusals': {
      const limit = limitParam(query);
      // null: refusals are counted by the ingest processes (their /metrics and /status), not here.
      json(res, data.refusals ? data.refusals(limit) : null);
      return true;
    }
    case '/api/dead-letters':
      json(res, data.deadLetters ? { deadLetters: await data.deadLetters(limitParam(query)) } : null);
      return true;
    default:
      return false;
  }
}
