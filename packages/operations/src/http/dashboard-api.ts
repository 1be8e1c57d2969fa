import type { ServerResponse } from 'node:http';
import { ArteriaError, STAGES, toArteriaError, type Stage } from '@arteria/protocol';
import type { DeviceRecord, LedgerEntry } from '@arteria/ports';
import type { DeadLetterView, ReplayOutcome, RefusalSummary } from '@arteria/ingest';
import { percentilesOf, type HistorySnapshot, type Percentiles } from '@arteria/telemetry';
import type { ChartAssets } from './chart-assets.js';
import { DASHBOARD_HTML, DASHBOARD_SCRIPT } from './dashboard-page.js';
import { HISTORY_SCRIPT } from './dashboard-history-script.js';
import { OPS_SCRIPT } from './dashboard-ops-script.js';
import type { RequestView } from './request-view.js';

/** What the dashboard reads; the embedded platform and `arteria dashboard` each provide it. */
export interface DashboardData {
  devices(): DeviceRecord[];
  recent(limit: number): Promise<LedgerEntry[]>;
  latency(): Promise<StageLatency[]>;
  /** Requests refused at admission; absent where this process does not admit requests (a cluster's dashboard). */
  refusals?(limit: number): RefusalSummary;
  /** The last hour, one point per interval (MetricHistory). */
  history?(): HistorySnapshot;
  /** One request: ledger entry, result and chain records; undefined when unknown. */
  request?(requestId: string): Promise<RequestView | undefined>;
  /** The queue's dead letters. */
  deadLetters?: {
    /** Newest first. */
    list(limit: number): Promise<DeadLetterView[]>;
    /** Throws DEAD_LETTER_NOT_FOUND. */
    show(taskId: string): Promise<DeadLetterView>;
    /** Absent where this process has no admission rules (a cluster's dashboard): replay with `arteria dlq replay`. */
    replay?(taskId: string): Promise<ReplayOutcome>;
  };
}

/** The one state change the dashboard makes: POST /api/dead-letters/{taskId}/replay. */
export const REPLAY_PATH = /^\/api\/dead-letters\/([^/]{1,200})\/replay$/;

/** One stage's latency (time from the previous stage): percentiles of real samples. */
export type StageLatency = { stage: Stage } & Percentiles;

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

/** Stage percentiles from recent ledger results (a cluster: results come from many workers). */
export function latencyFromResults(entries: readonly LedgerEntry[]): StageLatency[] {
  const samples = new Map<Stage, number[]>();
  for (const entry of entries) {
    if (entry.state !== 'completed') continue;
    for (const [stage, ms] of Object.entries(resultRow(entry).stagesMs) as [Stage, number][]) {
      const list = samples.get(stage) ?? [];
      list.push(ms);
      samples.set(stage, list);
    }
  }
  return STAGES.flatMap((stage) => {
    const p = percentilesOf(samples.get(stage) ?? []);
    return p === null ? [] : [{ stage, ...p }];
  });
}

const json = (res: ServerResponse, body: unknown, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

/** A refused operation as JSON: the code and message, with the HTTP status that fits it. */
function failure(res: ServerResponse, err: unknown): void {
  const error = toArteriaError(err);
  const status = error.code === 'DEAD_LETTER_NOT_FOUND' || error.code === 'REQUEST_NOT_FOUND' ? 404 : error.code === 'REPLAY_NOT_AVAILABLE' ? 501 : error.retryable ? 503 : 409;
  json(res, { error: { code: error.code, message: error.message } }, status);
}

const PAGE_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'";

/** Serves the page, its scripts and JSON endpoints; false when the path is not the dashboard's. */
export async function serveDashboard(data: DashboardData, charts: ChartAssets, method: string, path: string, query: URLSearchParams, res: ServerResponse): Promise<boolean> {
  const replay = REPLAY_PATH.exec(path);
  if (replay?.[1] !== undefined && method === 'POST') {
    const desk = data.deadLetters;
    if (desk?.replay === undefined) {
      failure(res, new ArteriaError('REPLAY_NOT_AVAILABLE', 'this dashboard runs without the registry and entitlements admission needs: replay with arteria dlq replay'));
      return true;
    }
    await desk.replay(decodeURIComponent(replay[1])).then((outcome) => json(res, outcome), (err: unknown) => failure(res, err));
    return true;
  }
  if (path.startsWith('/api/requests/')) {
    const view = data.request ? await data.request(decodeURIComponent(path.slice('/api/requests/'.length))) : undefined;
    if (view === undefined) failure(res, new ArteriaError('REQUEST_NOT_FOUND', 'no request with that id in the ledger (ids are r followed by 31 hex digits)'));
    else json(res, view);
    return true;
  }
  if (path.startsWith('/api/dead-letters/') && data.deadLetters) {
    await data.deadLetters.show(decodeURIComponent(path.slice('/api/dead-letters/'.length))).then((view) => json(res, view), (err: unknown) => failure(res, err));
    return true;
  }
  const text = (type: string, body: string): true => {
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' });
    res.end(body);
    return true;
  };
  switch (path) {
    case '/':
    case '/index.html':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': PAGE_CSP });
      res.end(DASHBOARD_HTML);
      return true;
    case '/dashboard.js':
      return text('text/javascript', DASHBOARD_SCRIPT);
    case '/history.js':
      return text('text/javascript', HISTORY_SCRIPT);
    case '/ops.js':
      return text('text/javascript', OPS_SCRIPT);
    case '/uplot.js':
      return text('text/javascript', charts.script);
    case '/uplot.css':
      return text('text/css', charts.css);
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
    case '/api/history':
      json(res, data.history ? data.history() : null);
      return true;
    case '/api/refusals': {
      const limit = limitParam(query);
      // null: refusals are counted by the ingest processes (their /metrics and /status), not here.
      json(res, data.refusals ? data.refusals(limit) : null);
      return true;
    }
    case '/api/dead-letters':
      json(res, data.deadLetters ? { deadLetters: await data.deadLetters.list(limitParam(query)), replay: data.deadLetters.replay !== undefined } : null);
      return true;
    default:
      return false;
  }
}
