import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, testArtifactDir } from './support/browser.js';
import { CLI } from './support/cluster.js';
import type { LoadReport } from '../src/loadtest/report.js';

/** `arteria loadtest` against the embedded platform, and its report opened in Chromium. */
describe('arteria loadtest', () => {
  it('runs a short test with progress, writes JSON and a self-contained HTML report that draws in a browser', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-loadtest-test-'));
    const out = path.join(dir, 'report');
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, 'loadtest', '--devices', '3', '--duration', '4s', '--interval-s', '0.5', '--out', out], { timeout: 280_000 });
      // Progress while it runs: one line a second.
      expect(stderr).toMatch(/^ +\d+ s {2}sent \d+ {2}ok \d+ {2}rejected \d+ {2}failed \d+ {2}errors \d+ {2}in flight \d+/m);
      expect(stdout).toContain(`report: ${path.join(out, 'report.html')}`);

      const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as LoadReport;
      const t = report.totals;
      expect(report.target.kind).toBe('embedded');
      expect(report.options).toMatchObject({ devices: 3, durationS: 4 });
      expect(t.ok).toBeGreaterThan(0);
      // Every run sent is accounted for: a result, an error or still unanswered at the end.
      expect(t.ok + t.rejected + t.failed + t.errors + t.unanswered).toBe(t.sent);
      expect(t.unanswered).toBe(0);
      expect(report.errorsByCode).toEqual({});
      expect(report.throughput.meanPerS).toBeGreaterThan(0);
      expect(report.e2e?.n).toBe(t.ok + t.rejected + t.failed);
      const e2e = report.e2e;
      if (e2e === null) throw new Error('no end-to-end latency');
      expect(e2e.p50Ms).toBeLessThanOrEqual(e2e.p95Ms);
      expect(e2e.p95Ms).toBeLessThanOrEqual(e2e.p99Ms);
      // Per stage, from the gateway's acquisition to its receipt of the result.
      expect(report.stages.map((s) => s.stage)).toEqual(['uploaded', 'published', 'enqueued', 'leased', 'fetched', 'computed', 'resultPublished', 'received']);
      // Workers over time, read from the platform's ops surface (the embedded default: 4).
      expect(report.series.points.some((p) => p.workersActual === 4 && p.workersDesired === 4)).toBe(true);
      expect(report.series.points.reduce((n, p) => n + p.results.ok, 0)).toBe(t.ok);

      const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
        const requests: string[] = [];
        const errors: string[] = [];
        page.on('request', (r) => requests.push(r.url()));
        page.on('pageerror', (e) => errors.push(e.message));
        const url = pathToFileURL(path.join(out, 'report.html')).href;
        await page.goto(url);
        await page.locator('body[data-drawn="true"]').waitFor();
        expect(errors).toEqual([]);
        // One self-contained file: nothing else is fetched.
        expect(requests).toEqual([url]);
        expect(await page.locator('.chart canvas').count()).toBe(4);
        expect(await page.locator('#sent').innerText()).toBe(String(t.sent));
        expect(await page.locator('#stages').innerText()).toMatch(/end to end[\s\S]*computed[\s\S]*received/);
        expect(await page.locator('.u-legend').allInnerTexts()).toEqual(expect.arrayContaining([expect.stringMatching(/desired[\s\S]*actual[\s\S]*busy/)]));
        // Kept for a person to look at: the report and its picture.
        const artifacts = await testArtifactDir('loadtest');
        await page.screenshot({ path: path.join(artifacts, 'report.png'), fullPage: true });
        for (const file of ['report.html', 'report.json']) await copyFile(path.join(out, file), path.join(artifacts, file));
      } finally {
        await browser.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('draws a saved report.json again (--render), and refuses a file that is not a report', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-loadtest-render-'));
    const run = promisify(execFile);
    try {
      const sample = path.resolve('docs/loadtest/sample-report.json');
      const { stdout } = await run(process.execPath, [CLI, 'loadtest', '--render', sample, '--out', dir], { timeout: 60_000 });
      const html = path.join(dir, 'sample-report.html');
      expect(stdout).toBe(`report: ${html}\n`);
      const report = JSON.parse(await readFile(sample, 'utf8')) as LoadReport;
      const page = await readFile(html, 'utf8');
      expect(page).toContain(`<title>Arteria load test ${report.startedAt}</title>`);
      expect(page).toContain(`<b id="sent">${report.totals.sent}</b>`);

      const bad = path.join(dir, 'bad.json');
      await writeFile(bad, JSON.stringify({ v: 1, totals: {} }));
      const refused = await run(process.execPath, [CLI, 'loadtest', '--render', bad], { timeout: 60_000 }).then(
        () => undefined,
        (err: unknown) => err as { code: number; stderr: string },
      );
      expect(refused?.code).toBe(78);
      expect(refused?.stderr).toMatch(/not a load test report/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
