/**
 * The operator's dashboard: one page and one script, served by the ops HTTP server
 * itself (no build step, nothing fetched from elsewhere). It polls /api/status,
 * /api/devices, /api/results, /api/latency and /api/refusals and draws the stage latency as SVG.
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
</style>
</head>
<body>
<h1>Arteria <small id="state"></small> <small id="stale"></small></h1>
<div class="cards">
  <div class="card"><span>devices online / known</span><b><span id="devices-online">-</span> / <span id="devices-known">-</span></b><span>in procedure: <span id="devices-in-procedure">-</span></span></div>
  <div class="card"><span>requests accepted</span><b id="requests-accepted">-</b><span>ok <span id="requests-ok">-</span> · rejected <span id="requests-rejected">-</span> · failed <span id="requests-failed">-</span></span></div>
  <div class="card"><span>refused at admission</span><b id="requests-refused">-</b><span id="refused-codes">-</span></div>
  <div class="card"><span>queue ready</span><b id="queue-ready">-</b><span>in flight <span id="queue-in-flight">-</span> · oldest <span id="queue-oldest">-</span></span></div>
  <div class="card"><span>workers busy / size</span><b><span id="workers-busy">-</span> / <span id="workers-size">-</span></b><span>dead-lettered <span id="queue-dead">-</span></span></div>
</div>
<h2>Stage latency (mean and p95, ms, time from the previous stage)</h2>
<svg id="latency" width="900" height="220" role="img" aria-label="stage latency"></svg>
<h2>Recent results</h2>
<table><thead><tr><th>device</th><th>algorithm</th><th>status</th><th>publish to result ms</th><th>stages ms</th><th>completed</th></tr></thead><tbody id="results"></tbody></table>
<h2>Refused at admission (never queued)</h2>
<table><thead><tr><th>device</th><th>code</th><th>reason</th><th>request</th><th>when</th></tr></thead><tbody id="refusals"></tbody></table>
<h2>Devices</h2>
<table><thead><tr><th>device</th><th>state</th><th>in procedure</th><th>last seen</th><th>gateway</th></tr></thead><tbody id="devices"></tbody></table>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_SCRIPT = `'use strict';
const $ = (id) => document.getElementById(id);
const set = (id, v) => { const el = $(id); if (el) el.textContent = v === undefined || v === null ? '-' : String(v); };
const ms = (v) => v === undefined || v === null ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(0);
const ago = (at) => at ? Math.max(0, Math.round((Date.now() - at) / 1000)) + ' s ago' : '-';
const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
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
    cell(r.tenant + '/' + r.device), cell(r.algorithm),
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
    cell(d.inProcedure ? 'yes' : ''), cell(ago(d.lastSeen)), cell(d.gatewayVersion || ''),
  ])));
}

function p95(s) {
  const want = s.count * 0.95;
  for (const b of s.buckets) if (b.count >= want) return b.leMs;
  return s.buckets.length ? s.buckets[s.buckets.length - 1].leMs : 0;
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
  const rows = stages.filter((s) => s.count > 0).map((s) => ({ stage: s.stage, mean: s.sumMs / s.count, p95: p95(s), count: s.count }));
  const height = Math.max(40, 24 * rows.length + 30);
  chart.setAttribute('height', height);
  const max = Math.max(1, ...rows.map((r) => Math.max(r.mean, r.p95)));
  // Log scale: stages range from sub-millisecond (enqueue) to seconds (compute).
  const x = (v) => 130 + 480 * Math.log10(1 + v) / Math.log10(1 + max);
  const parts = [];
  rows.forEach((r, i) => {
    const y = 10 + i * 24;
    parts.push(svg('text', { x: 0, y: y + 13, 'font-size': 12 }, r.stage));
    parts.push(svg('rect', { x: 130, y, width: Math.max(1, x(r.mean) - 130), height: 16, fill: '#3b82f6' }));
    parts.push(svg('line', { x1: x(r.p95), x2: x(r.p95), y1: y - 2, y2: y + 18, stroke: '#b91c1c', 'stroke-width': 2 }));
    parts.push(svg('text', { x: 620, y: y + 13, 'font-size': 12, class: 'latency-value' }, ms(r.mean) + ' / ' + ms(r.p95) + ' ms (n=' + r.count + ')'));
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
