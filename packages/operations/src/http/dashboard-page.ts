/**
 * The operator's dashboard: one page and its scripts, served by the ops HTTP server itself
 * (no build step, nothing fetched from elsewhere; the chart library is uPlot from npm).
 * dashboard.js polls /api/status, /api/devices, /api/results, /api/latency and
 * /api/refusals and draws the stage latency as SVG; history.js draws the last hour from
 * /api/history; ops.js is the request page and the dead-letter view.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Arteria</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px system-ui, sans-serif; margin: 1rem 2rem; color: #222; background: #fafafa; }
h1 { font-size: 1.3rem; margin: 0 0 .8rem; } h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem; min-width: 9rem; }
.card b { display: block; font-size: 1.5rem; }
.card span { color: #666; font-size: .8rem; }
table { border-collapse: collapse; background: #fff; width: 100%; font-size: .85rem; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .5rem; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #17803d; } .rejected { color: #b45309; } .failed { color: #b91c1c; } .offline { color: #999; }
#stale { color: #b91c1c; }
nav a { margin-right: 1rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: .8rem; }
.chart { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .4rem; min-height: 250px; }
.panel { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem; }
.panel dl { display: grid; grid-template-columns: 12rem 1fr; gap: .2rem .8rem; margin: .4rem 0; }
.panel dt { color: #666; } .panel dd { margin: 0; font-family: ui-monospace, monospace; font-size: .8rem; word-break: break-all; }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; font-size: .75rem; max-height: 20rem; }
button { font: inherit; padding: .2rem .7rem; }
</style>
<link rel="stylesheet" href="/uplot.css">
</head>
<body>
<h1>Arteria <small id="state"></small> <small id="stale"></small></h1>
<nav><a href="#history">History</a><a href="#lookup">Request</a><a href="#recent">Results</a><a href="#dlq">Dead letters</a><a href="#fleet">Fleet</a></nav>
<div class="cards">
  <div class="card"><span>devices online / known</span><b><span id="devices-online">-</span> / <span id="devices-known">-</span></b><span>in procedure: <span id="devices-in-procedure">-</span></span></div>
  <div class="card"><span>requests accepted</span><b id="requests-accepted">-</b><span>ok <span id="requests-ok">-</span> · rejected <span id="requests-rejected">-</span> · failed <span id="requests-failed">-</span></span></div>
  <div class="card"><span>refused at admission</span><b id="requests-refused">-</b><span id="refused-codes">-</span></div>
  <div class="card"><span>queue ready</span><b id="queue-ready">-</b><span>in flight <span id="queue-in-flight">-</span> · oldest <span id="queue-oldest">-</span></span></div>
  <div class="card"><span>workers busy / size</span><b><span id="workers-busy">-</span> / <span id="workers-size">-</span></b><span>dead-lettered <span id="queue-dead">-</span></span></div>
</div>
<h2 id="history">Last hour <small id="history-note"></small></h2>
<div class="charts">
  <div class="chart" id="chart-throughput"></div>
  <div class="chart" id="chart-latency"></div>
  <div class="chart" id="chart-queue"></div>
  <div class="chart" id="chart-workers"></div>
</div>
<h2>Stage latency (p50 bar, p95 tick, ms, time from the previous stage; percentiles of real samples)</h2>
<svg id="latency" width="900" height="220" role="img" aria-label="stage latency"></svg>
<h2 id="lookup">Request</h2>
<form id="request-form" class="panel"><label for="request-id">Request id</label> <input id="request-id" size="40" placeholder="r + 31 hex digits" autocomplete="off"> <button type="submit">Show</button>
<div id="request-view"></div></form>
<h2 id="recent">Recent results</h2>
<table><thead><tr><th>request</th><th>device</th><th>algorithm</th><th>status</th><th>publish to result ms</th><th>stages ms</th><th>completed</th></tr></thead><tbody id="results"></tbody></table>
<h2>Refused at admission (never queued)</h2>
<table><thead><tr><th>device</th><th>code</th><th>reason</th><th>request</th><th>when</th></tr></thead><tbody id="refusals"></tbody></table>
<h2 id="dlq">Dead letters <small id="dlq-note"></small></h2>
<table><thead><tr><th>task</th><th>request</th><th>device</th><th>algorithm</th><th>reason</th><th>deliveries</th><th>ledger</th><th>when</th><th></th></tr></thead><tbody id="dead-letters"></tbody></table>
<div id="dead-letter-view"></div>
<h2 id="fleet">Fleet</h2>
<table><thead><tr><th>device</th><th>state</th><th>in procedure</th><th>last seen</th><th>gateway</th><th>config version</th></tr></thead><tbody id="devices"></tbody></table>
<script src="/dashboard.js"></script>
<script src="/uplot.js"></script>
<script src="/history.js"></script>
<script src="/ops.js"></script>
</body>
</html>
`;

export const DASHBOARD_SCRIPT = `'use strict';
const $ = (id) => document.getElementById(id);
const set = (id, v) => { const el = $(id); if (el) el.textContent = v === undefined || v === null ? '-' : String(v); };
const ms = (v) => v === undefined || v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0);
const ago = (at) => at ? Math.max(0, Math.round((Date.now() - at) / 1000)) + ' s ago' : '-';
const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
// Opens the request page (ops.js reads the fragment).
const requestLink = (id) => { const td = document.createElement('td'); const a = document.createElement('a'); a.href = '#request=' + id; a.textContent = id.slice(0, 12); td.appendChild(a); return td; };
const row = (cells) => { const tr = document.createElement('tr'); for (const c of cells) tr.appendChild(c); return tr; };
const get = async (path) => { const r = await fetch(path, { cache: 'no-store' }); if (!r.ok) throw new Error(path + ': ' + r.status); return r.json(); };

function showStatus(s) {
  set('state', s.state);
  const d = s.devices || {}, q = s.queue || {}, r = s.requests || {}, w = s.workers || {};
  set('devices-online', d.online); set('devices-known', d.known); set('devices-in-procedure', d.inProcedure);
  set('requests-accepted', r.accepted); set('requests-ok', r.ok); set('requests-rejected', r.rejected); set('requests-failed', r.failed);
  set('queue-ready', q.ready); set('queue-in-flight', q.inFlight); set('queue-dead', q.deadLettered);
  set('queue-oldest', q.ready > 0 || q.inFlight > 0 ? ms(q.oldestAgeMs) + ' ms' : '-');
  set('workers-busy', w.busy); set('workers-size', w.size);
}

function showResults(results) {
  const body = $('results');
  body.replaceChildren(...results.map((r) => row([
    requestLink(r.requestId), cell(r.tenant + '/' + r.device), cell(r.algorithm),
    cell(r.status + (r.errorCode ? ' ' + r.errorCode : ''), r.status),
    cell(ms(r.e2eMs), 'num'),
    cell(Object.entries(r.stagesMs).map(([k, v]) => k + ' ' + ms(v)).join(' · ')),
    cell(ago(r.completedAt)),
  ])));
}

function showRefusals(r) {
  // null: a cluster's dashboard; the ingest processes count refusals (their /metrics).
  set('requests-refused', r ? r.total : 'see ingest /metrics');
  set('refused-codes', r ? Object.entries(r.byCode).map(([k, v]) => k + ' ' + v).join(' · ') || 'none' : '-');
  $('refusals').replaceChildren(...(r ? r.recent : []).map((x) => row([
    cell(x.tenant + '/' + x.device), cell(x.code, 'rejected'), cell(x.message), cell(x.requestId.slice(0, 12)), cell(ago(x.at)),
  ])));
}

function showDevices(devices) {
  $('devices').replaceChildren(...devices.map((d) => row([
    cell(d.tenant + '/' + d.device), cell(d.state, d.state === 'online' ? 'ok' : 'offline'),
    cell(d.inProcedure ? 'yes' : ''), cell(d.lastSeen ? ago(d.lastSeen) : '-'), cell(d.gatewayVersion || ''),
    cell(d.configVersion === undefined ? '-' : String(d.configVersion) + (d.configRefused ? ' (refused v' + d.configRefused.version + ': ' + d.configRefused.error + ')' : ''), d.configRefused ? 'failed' : ''),
  ])));
}

const NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function showLatency(stages) {
  const chart = $('latency');
  // Percentiles of real samples (the server keeps them), not histogram bucket edges.
  const rows = stages.filter((s) => s.n > 0).map((s) => ({ stage: s.stage, p50: s.p50Ms, p95: s.p95Ms, p99: s.p99Ms, count: s.n }));
  const height = Math.max(40, 24 * rows.length + 30);
  chart.setAttribute('height', height);
  const max = Math.max(1, ...rows.map((r) => Math.max(r.p50, r.p95)));
  // Log scale: stages range from sub-millisecond (enqueue) to seconds (compute).
  const x = (v) => 130 + 480 * Math.log10(1 + v) / Math.log10(1 + max);
  const parts = [];
  rows.forEach((r, i) => {
    const y = 10 + i * 24;
    parts.push(svg('text', { x: 0, y: y + 13, 'font-size': 12 }, r.stage));
    parts.push(svg('rect', { x: 130, y, width: Math.max(1, x(r.p50) - 130), height: 16, fill: '#3b82f6' }));
    parts.push(svg('line', { x1: x(r.p95), x2: x(r.p95), y1: y - 2, y2: y + 18, stroke: '#b91c1c', 'stroke-width': 2 }));
    parts.push(svg('text', { x: 620, y: y + 13, 'font-size': 12, class: 'latency-value' }, 'p50 ' + ms(r.p50) + ' · p95 ' + ms(r.p95) + ' · p99 ' + ms(r.p99) + ' ms (n=' + r.count + ')'));
  });
  if (rows.length === 0) parts.push(svg('text', { x: 0, y: 20, 'font-size': 12 }, 'no results yet'));
  chart.replaceChildren(...parts);
}

async function refresh() {
  try {
    const [status, devices, results, latency, refusals] = await Promise.all([get('/api/status'), get('/api/devices'), get('/api/results?limit=20'), get('/api/latency'), get('/api/refusals?limit=10')]);
    showStatus(status); showDevices(devices.devices); showResults(results.results); showLatency(latency.stages); showRefusals(refusals);
    set('stale', '');
    document.body.dataset.updatedAt = String(Date.now());
  } catch (err) {
    set('stale', 'not updating: ' + err.message);
  }
}
refresh();
setInterval(refresh, 2000);
`;
