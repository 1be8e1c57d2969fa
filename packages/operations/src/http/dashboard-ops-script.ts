/**
 * ops.js: the dashboard's request page (search by id: stage timeline, algorithm version and
 * digest, result, ledger records) and its dead-letter view (inspect, replay). A replay is a
 * POST carrying the session's CSRF token, read once from GET /api/csrf.
 */
export const OPS_SCRIPT = `'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
  const td = (text, cls) => el('td', text, cls);
  const tr = (cells) => { const r = document.createElement('tr'); for (const c of cells) r.appendChild(c); return r; };
  const ago = (at) => at ? Math.max(0, Math.round((Date.now() - at) / 1000)) + ' s ago' : '-';
  const iso = (at) => at ? new Date(at).toISOString() : '-';
  const STAGES = ['uploaded', 'published', 'enqueued', 'leased', 'fetched', 'computed', 'resultPublished'];
  let csrf;

  function dl(pairs) {
    const d = document.createElement('dl');
    for (const [k, v] of pairs) { if (v === undefined || v === null || v === '') continue; d.appendChild(el('dt', k)); d.appendChild(el('dd', String(v))); }
    return d;
  }

  // Stage timeline: one bar per stage, from the previous stage's time to its own.
  function timeline(timings) {
    const NS = 'http://www.w3.org/2000/svg';
    const marks = STAGES.filter((s) => timings[s] !== undefined).map((s) => [s, timings[s]]);
    const box = document.createElementNS(NS, 'svg');
    box.setAttribute('width', '720'); box.setAttribute('height', String(22 * marks.length + 10)); box.setAttribute('id', 'request-timeline');
    if (marks.length < 2) return box;
    const t0 = marks[0][1], span = Math.max(1, marks[marks.length - 1][1] - t0);
    const x = (t) => 140 + 440 * (t - t0) / span;
    marks.forEach(([stage, at], i) => {
      const prev = i === 0 ? at : marks[i - 1][1];
      const y = 4 + i * 22;
      const label = document.createElementNS(NS, 'text'); label.setAttribute('x', '0'); label.setAttribute('y', String(y + 13)); label.setAttribute('font-size', '12'); label.textContent = stage;
      const bar = document.createElementNS(NS, 'rect'); bar.setAttribute('x', String(x(prev))); bar.setAttribute('y', String(y)); bar.setAttribute('height', '16');
      bar.setAttribute('width', String(Math.max(2, x(at) - x(prev)))); bar.setAttribute('fill', stage === 'computed' ? '#d97706' : '#3b82f6');
      const value = document.createElementNS(NS, 'text'); value.setAttribute('x', '590'); value.setAttribute('y', String(y + 13)); value.setAttribute('font-size', '12');
      const d = at - prev;
      value.textContent = '+' + (d < 10 ? d.toFixed(2) : d.toFixed(0)) + ' ms';
      box.appendChild(label); box.appendChild(bar); box.appendChild(value);
    });
    return box;
  }

  async function showRequest(id) {
    const view = $('request-view');
    $('request-id').value = id;
    view.replaceChildren(el('p', 'loading ' + id + '...'));
    const r = await fetch('/api/requests/' + encodeURIComponent(id), { cache: 'no-store' });
    const body = await r.json();
    if (!r.ok) { view.replaceChildren(el('p', body.error.code + ': ' + body.error.message, 'failed')); return; }
    const p = body.provenance, res = body.result, a = p.algorithm || (res && res.algorithm);
    const status = body.state === 'completed' ? (res.status + (res.error ? ' ' + res.error.code + ': ' + res.error.message : '')) : body.state;
    const parts = [
      el('h3', 'Request ' + body.requestId),
      dl([
        ['device', (p.tenant || '?') + '/' + (p.device || '?')], ['requested', p.requested], ['status', status],
        ['algorithm', a ? a.name + '@' + a.version : ''], ['artifact digest', a ? a.digest : ''],
        ['model', a && a.model ? a.model.name + ' ' + a.model.digest : ''], ['worker', p.worker],
        ['inputs', p.inputs.map((i) => i.uri + ' sha256:' + i.sha256 + ' (' + i.size + ' bytes)').join('\\n')],
        ['result hash', p.resultHash], ['served entry', body.servedIntact ? 'matches its chain records' : 'TAMPERED: ' + body.tampered],
      ]),
      el('h4', 'Stage timeline'), timeline(Object.assign({}, p.timings, res ? res.timings : {})),
      el('h4', 'Ledger records'),
    ];
    const records = el('table');
    records.appendChild(tr([el('th', 'seq'), el('th', 'kind'), el('th', 'hash'), el('th', 'recorded'), el('th', 'check')]));
    for (const rec of p.records) records.appendChild(tr([td(String(rec.seq)), td(rec.kind), td(rec.hash), td(iso(rec.recordedAt)), td(rec.intact ? 'intact' : 'NOT INTACT', rec.intact ? 'ok' : 'failed')]));
    parts.push(records);
    if (res) { parts.push(el('h4', 'Result as sent to the device')); parts.push(el('pre', JSON.stringify(res, null, 2))); }
    view.replaceChildren(...parts);
    document.body.dataset.requestShown = body.requestId;
  }

  function fromHash() {
    const m = /^#request=(r[0-9a-f]{31})$/.exec(location.hash);
    if (m) showRequest(m[1]).catch((err) => $('request-view').replaceChildren(el('p', String(err), 'failed')));
  }
  $('request-form').addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = '#request=' + $('request-id').value.trim();
    fromHash();
  });
  window.addEventListener('hashchange', fromHash);
  fromHash();

  async function csrfToken() {
    if (csrf === undefined) { const r = await fetch('/api/csrf', { cache: 'no-store' }); csrf = (await r.json()).token; }
    return csrf;
  }

  async function replay(taskId, button) {
    if (!confirm('Replay dead letter ' + taskId + '? It goes through admission again and is queued under its own id.')) return;
    button.disabled = true;
    const r = await fetch('/api/dead-letters/' + encodeURIComponent(taskId) + '/replay', { method: 'POST', headers: { 'x-arteria-csrf': await csrfToken() } });
    const body = await r.json();
    $('dead-letter-view').replaceChildren(el('p', r.ok ? (body.status === 'replayed' ? 'replayed as task ' + body.newTaskId + ' (' + body.algorithm.name + '@' + body.algorithm.version + ')' : 'already answered (' + body.result + '): letter cleared') : body.error.code + ': ' + body.error.message, r.ok ? 'ok' : 'failed'));
    $('dead-letter-view').dataset.outcome = r.ok ? body.status : body.error.code;
    refreshDeadLetters();
  }

  async function inspect(taskId) {
    const r = await fetch('/api/dead-letters/' + encodeURIComponent(taskId), { cache: 'no-store' });
    const body = await r.json();
    $('dead-letter-view').replaceChildren(el('h3', 'Dead letter ' + taskId), el('pre', JSON.stringify(body, null, 2)));
  }

  async function refreshDeadLetters() {
    try {
      const r = await fetch('/api/dead-letters?limit=50', { cache: 'no-store' });
      const body = await r.json();
      if (body === null) { $('dlq-note').textContent = 'not available here'; return; }
      $('dlq-note').textContent = body.deadLetters.length + (body.replay ? '' : ' (replay with arteria dlq replay)');
      $('dead-letters').replaceChildren(...body.deadLetters.map((d) => {
        const actions = document.createElement('td');
        const show = el('button', 'inspect'); show.type = 'button'; show.addEventListener('click', () => inspect(d.taskId));
        actions.appendChild(show);
        if (body.replay) { const again = el('button', 'replay'); again.type = 'button'; again.className = 'replay'; again.addEventListener('click', () => replay(d.taskId, again)); actions.appendChild(again); }
        const req = document.createElement('td');
        if (d.request) { const a = el('a', d.request.id.slice(0, 12)); a.href = '#request=' + d.request.id; req.appendChild(a); }
        return tr([td(d.taskId.slice(0, 16)), req, td(d.request ? d.request.tenant + '/' + d.request.device : '?'), td(d.pinned ? d.pinned.name + '@' + d.pinned.version : (d.request ? d.request.algorithm : '')),
          td(d.reason), td(String(d.deliveries)), td(d.ledger ? d.ledger.state + (d.ledger.status ? ' ' + d.ledger.status : '') : d.unreadable ? 'unreadable' : '-'), td(ago(d.at)), actions]);
      }));
      document.body.dataset.deadLetters = String(body.deadLetters.length);
    } catch (err) {
      $('dlq-note').textContent = 'not updating: ' + err.message;
    }
  }
  refreshDeadLetters();
  setInterval(refreshDeadLetters, 5000);
})();
`;
