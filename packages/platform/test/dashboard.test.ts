import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { deviceTopic, encodePayload, epochNow } from '@arteria/protocol';
import type { DeviceRecord } from '@arteria/ports';
import type { HistorySnapshot } from '@arteria/telemetry';
import type { PlatformStatus } from '../src/embedded/embedded-platform.js';
import type { RefusalSummary } from '@arteria/ingest';
import type { RequestView, ResultRow, StageLatency } from '@arteria/operations';
import { TestDevice } from '@arteria/testing';
import { runDashboardScript } from './support/script-dom.js';
import { OPS_AUTH, SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

const getJson = async <T>(url: string): Promise<T> => {
  const res = await fetch(url, OPS_AUTH);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/json');
  return (await res.json()) as T;
};

describe('dashboard of the embedded platform', () => {
  it('serves the page and JSON endpoints with the numbers of the requests that went through', async () => {
    const tmp = await tempDir('dashboard');
    const { platform, s3 } = await startPlatform(tmp.dir, { algorithmDirs: [fixtureAlgorithm('echo'), fixtureAlgorithm('throws')] });
    const device = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
    try {
      await device.client.publishAsync(deviceTopic(device, 'status'), encodePayload({ v: 1, state: 'online', at: epochNow(), inProcedure: true, gatewayVersion: '1.2.3' }), { qos: 1 });
      const run = synthesizeXaRun({ seed: 5, rows: 32, columns: 32, frames: 4, bitsStored: 8 });
      const ok = await device.prepare(s3, 'arteria-runs', run.bytes, 'echo@^1', '1.2.826.0.1.3680043.10.1.1');
      await device.publishRaw(encodePayload(ok));
      await device.next((r) => r.requestId === ok.id);
      const throws = await device.prepare(s3, 'arteria-runs', run.bytes, 'throws@^1', '1.2.826.0.1.3680043.10.1.2');
      await device.publishRaw(encodePayload(throws));
      const failed = await device.next((r) => r.requestId === throws.id);
      expect(failed.status).toBe('failed');
      // Two requests refused at admission: never queued, so not in the ledger.
      const unknown = await device.prepare(s3, 'arteria-runs', run.bytes, 'no-such-algorithm@^1', '1.2.826.0.1.3680043.10.1.3');
      await device.publishRaw(encodePayload(unknown));
      expect((await device.next((r) => r.requestId === unknown.id)).error?.code).toBe('UNKNOWN_ALGORITHM');
      await device.publishRaw(Buffer.from('{ not json'));
      await device.next((r) => r.error?.code === 'INVALID_JSON');

      const base = platform.http.url;
      // A worker counts a result in the metrics and their history just after publishing it:
      // the device may have it first. Latency and history are read once both are counted.
      const counted = async (): Promise<number> => (await getJson<HistorySnapshot>(`${base}/api/history`)).points.reduce((n, p) => n + p.results.ok + p.results.failed, 0);
      await expect.poll(counted, { timeout: 15_000, interval: 100 }).toBe(2);
      const page = await fetch(`${base}/`, OPS_AUTH);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      const html = await page.text();
      expect(html).toContain('<script src="/dashboard.js"></script>');
      // Everything is served locally: no URL to another host.
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
      const script = await fetch(`${base}/dashboard.js`, OPS_AUTH);
      expect(script.headers.get('content-type')).toContain('text/javascript');
      const js = await script.text();
      for (const endpoint of ['/api/status', '/api/devices', '/api/results', '/api/latency', '/api/refusals']) expect(js).toContain(endpoint);
      expect(js).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);

      const status = await getJson<PlatformStatus>(`${base}/api/status`);
      expect(status.requests).toMatchObject({ accepted: 2, completed: 2, ok: 1, rejected: 0, failed: 1, refused: 2 });

      const refusals = await getJson<RefusalSummary>(`${base}/api/refusals?limit=5`);
      expect(refusals.total).toBe(2);
      expect(refusals.byCode).toEqual({ UNKNOWN_ALGORITHM: 1, INVALID_JSON: 1 });
      expect(refusals.recent.map((r) => r.code)).toEqual(['INVALID_JSON', 'UNKNOWN_ALGORITHM']); // newest first
      expect(refusals.recent[1]).toMatchObject({ tenant: 'acme', device: 'cath-lab-1', requestId: unknown.id });
      expect(refusals.recent[1]?.message).toContain('no-such-algorithm');
      expect(status.workers).toMatchObject({ size: 2 });
      expect(status.devices).toMatchObject({ known: 1, online: 1, inProcedure: 1 });

      const { devices } = await getJson<{ devices: DeviceRecord[] }>(`${base}/api/devices`);
      expect(devices).toEqual([expect.objectContaining({ tenant: 'acme', device: 'cath-lab-1', state: 'online', inProcedure: true, gatewayVersion: '1.2.3' })]);

      const { results } = await getJson<{ results: ResultRow[] }>(`${base}/api/results?limit=10`);
      expect(results).toHaveLength(2);
      const okRow = results.find((r) => r.requestId === ok.id);
      const failedRow = results.find((r) => r.requestId === throws.id);
      expect(okRow).toMatchObject({ tenant: 'acme', device: 'cath-lab-1', status: 'ok', errorCode: null });
      expect(okRow?.algorithm).toMatch(/^echo@\d+\.\d+\.\d+/);
      expect(okRow?.e2eMs).toBeGreaterThanOrEqual(0);
      expect(Object.keys(okRow?.stagesMs ?? {})).toEqual(expect.arrayContaining(['enqueued', 'leased', 'fetched', 'computed', 'resultPublished']));
      expect(failedRow).toMatchObject({ status: 'failed', errorCode: failed.error?.code });
      expect(failedRow?.algorithm).toMatch(/^throws@1\.0\.0/);
      expect(failedRow?.errorCode).toMatch(/^[A-Z_]+$/);
      expect((await getJson<{ results: ResultRow[] }>(`${base}/api/results?limit=1`)).results).toHaveLength(1);

      const { stages } = await getJson<{ stages: StageLatency[] }>(`${base}/api/latency`);
      const leased = stages.find((s) => s.stage === 'leased');
      expect(leased?.n).toBe(2);
      // Percentiles of the two real samples (nearest rank), not a histogram bucket's edge.
      const rows = [okRow, failedRow].map((r) => r?.stagesMs.leased ?? -1).sort((a, b) => a - b);
      expect(leased?.p50Ms).toBe(rows[0]);
      expect(leased?.p95Ms).toBe(rows[1]);
      expect(leased?.maxMs).toBe(rows[1]);

      const history = await getJson<HistorySnapshot>(`${base}/api/history`);
      expect(history.bucketMs).toBe(10_000);
      expect(history.points).toHaveLength(360);
      const recentPoints = history.points.filter((p) => p.results.ok + p.results.failed > 0);
      expect(recentPoints.reduce((n, p) => n + p.results.ok, 0)).toBe(1);
      expect(recentPoints.reduce((n, p) => n + p.results.failed, 0)).toBe(1);
      expect(recentPoints.reduce((n, p) => n + (p.e2e?.n ?? 0), 0)).toBe(2);
      // Gauges are sampled from the start, four times an interval: the newest interval has the
      // pool's two workers once its first reading is in (a new 10 s interval may have begun
      // since the last one, more than 2.5 s ago on a busy machine).
      await expect
        .poll(async () => (await getJson<HistorySnapshot>(`${base}/api/history`)).points.at(-1), { timeout: 15_000, interval: 250 })
        .toMatchObject({ workersActual: 2, workersDesired: 2, queueReady: 0 });

      const view = await getJson<RequestView>(`${base}/api/requests/${ok.id}`);
      expect(view).toMatchObject({ requestId: ok.id, state: 'completed', servedIntact: true, result: { status: 'ok' } });
      expect(view.result?.recordHash).toMatch(/^sha256:/);
      expect(view.provenance.algorithm?.name).toBe('echo');
      expect(view.provenance.algorithm?.digest).toMatch(/^sha256:/);
      expect(view.provenance.resultHash).toBe(view.result?.recordHash);
      expect(view.provenance.records.map((r) => [r.kind, r.intact])).toEqual([['accepted', true], ['completed', true]]);
      const missing = await fetch(`${base}/api/requests/r${'0'.repeat(31)}`, OPS_AUTH);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: { code: 'REQUEST_NOT_FOUND' } });

      // No browser here: the page's own script runs against the live endpoints in a minimal DOM.
      const dom = runDashboardScript(js, base);
      const deadline = Date.now() + 30_000;
      while (dom.body.dataset.updatedAt === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const text = (id: string): string => dom.byId.get(id)?.allText() ?? '';
      expect(text('stale')).toBe('');
      expect([text('requests-accepted'), text('requests-ok'), text('requests-failed'), text('requests-rejected')]).toEqual(['2', '1', '1', '0']);
      expect(text('requests-refused')).toBe('2');
      expect(text('refused-codes')).toContain('UNKNOWN_ALGORITHM 1');
      expect(dom.byId.get('refusals')?.children).toHaveLength(2);
      expect(text('refusals')).toContain('no-such-algorithm');
      expect([text('devices-online'), text('devices-known'), text('devices-in-procedure')]).toEqual(['1', '1', '1']);
      expect([text('workers-size'), text('queue-ready')]).toEqual(['2', '0']);
      expect(dom.byId.get('results')?.children).toHaveLength(2);
      expect(text('results')).toContain('acme/cath-lab-1');
      expect(text('devices')).toContain('online');
      const chart = dom.byId.get('latency');
      expect(chart?.children.filter((c) => c.tag === 'rect').length).toBeGreaterThanOrEqual(5);
      expect(chart?.allText()).toMatch(/leased .*\(n=2\)/);
    } finally {
      await device.close();
      s3.destroy();
      await platform.close();
      await tmp.remove();
    }
  }, 90_000);
});
