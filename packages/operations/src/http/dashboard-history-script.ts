/**
 * The dashboard's history charts (history.js): the last hour from /api/history, drawn with
 * uPlot (served as /uplot.js). Four charts: throughput, end-to-end latency percentiles,
 * queue depth, workers desired and actual. Also used, with the data inlined, by the
 * load-test report (`chartSeries` and `drawCharts` take the snapshot as /api/history serves it).
 */
export const HISTORY_CHARTS = `
function chartSeries(points) {
  const xs = points.map((p) => p.at / 1000);
  const pick = (f) => points.map((p) => { const v = f(p); return v === undefined ? null : v; });
  return {
    throughput: [xs, pick((p) => p.throughputPerS), pick((p) => p.throughputPerS * (p.results.failed + p.results.rejected) / Math.max(1, p.results.ok + p.results.failed + p.results.rejected))],
    latency: [xs, pick((p) => p.e2e && p.e2e.p50Ms), pick((p) => p.e2e && p.e2e.p95Ms), pick((p) => p.e2e && p.e2e.p99Ms)],
    queue: [xs, pick((p) => p.queueReady), pick((p) => p.inFlight)],
    workers: [xs, pick((p) => p.workersDesired), pick((p) => p.workersActual)],
  };
}

const CHART_DEFS = {
  throughput: { title: 'Throughput (results/s)', series: [['all', '#2563eb'], ['rejected + failed', '#b91c1c']] },
  latency: { title: 'Publish to result, ms (real samples)', series: [['p50', '#16a34a'], ['p95', '#d97706'], ['p99', '#b91c1c']] },
  queue: { title: 'Queue depth', series: [['ready', '#2563eb'], ['in flight', '#7c3aed']] },
  workers: { title: 'Workers', series: [['desired', '#d97706', [6, 4]], ['actual', '#16a34a']] },
};

function drawCharts(charts, prefix, points) {
  const data = chartSeries(points);
  for (const name of Object.keys(CHART_DEFS)) {
    const el = document.getElementById(prefix + name);
    if (!el) continue;
    const def = CHART_DEFS[name];
    if (charts[name]) { charts[name].setData(data[name]); continue; }
    const width = Math.max(300, (el.clientWidth || 560) - 16);
    charts[name] = new uPlot({
      title: def.title, width, height: 200,
      scales: { x: { time: true } },
      // spanGaps: an interval without a reading (a busy process skipped a sampling) joins its neighbours.
      series: [{}].concat(def.series.map(([label, stroke, dash]) => ({ label, stroke, dash, width: 2, spanGaps: true, points: { show: false } }))),
      axes: [{}, { size: 60 }],
    }, data[name], el);
  }
}
`;

export const HISTORY_SCRIPT = `'use strict';
${HISTORY_CHARTS}
(function () {
  const charts = {};
  async function refreshHistory() {
    try {
      const r = await fetch('/api/history', { cache: 'no-store' });
      if (!r.ok) throw new Error('/api/history: ' + r.status);
      const h = await r.json();
      const note = document.getElementById('history-note');
      if (h === null) { if (note) note.textContent = 'not kept by this process'; return; }
      if (note) note.textContent = '(' + (h.bucketMs / 1000) + ' s intervals)';
      // Trim the empty hour before the first sample, so a new platform's charts are not flat lines.
      let first = h.points.findIndex((p) => p.queueReady !== null || p.results.ok + p.results.rejected + p.results.failed > 0);
      const points = first < 0 ? h.points.slice(-2) : h.points.slice(Math.max(0, Math.min(first, h.points.length - 2)));
      drawCharts(charts, 'chart-', points);
      document.body.dataset.historyPoints = String(points.length);
    } catch (err) {
      const note = document.getElementById('history-note');
      if (note) note.textContent = 'not updating: ' + err.message;
    }
  }
  refreshHistory();
  setInterval(refreshHistory, 5000);
})();
`;
