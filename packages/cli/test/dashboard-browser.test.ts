import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { SimulatedFleet } from '@arteria/fleet';
import { EmbeddedPlatform } from '@arteria/platform';
import { encodeTask } from '@arteria/ports';
import { CHROMIUM_ARGS, testArtifactDir } from './support/browser.js';

const SECRET = 'dashboard-tenant-secret-0123456789';
const algorithmDir = (name: string): string => path.dirname(fileURLToPath(import.meta.resolve(`@arteria/${name}/manifest.json`)));

/** Polled through locators: the page's CSP forbids eval, which page.waitForFunction needs. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`the dashboard did not show ${what} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const shot = async (page: Page, name: string): Promise<void> => {
  await page.screenshot({ path: path.join(await testArtifactDir('dashboard'), `${name}.png`), fullPage: true });
};

/** The operator's page, in a real browser (Debian's chromium), while a simulated fleet sends runs. */
describe('dashboard in a browser', () => {
  it('renders live numbers, history charts, a request page, the dead-letter view with replay, and the fleet', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-dashboard-'));
    const platform = await EmbeddedPlatform.start({
      mqttPort: 0,
      s3Port: 0,
      httpPort: 0,
      dataDir: path.join(dir, 'platform'),
      tenants: { demo: SECRET },
      algorithmDirs: [algorithmDir('contrast-injection'), algorithmDir('balloon-inflation')],
      // One-second intervals, so a test of seconds draws lines of several points.
      history: { bucketMs: 1_000 },
    });
    const fleet = await SimulatedFleet.start({
      devices: 3,
      tenantSecret: SECRET,
      mqttUrl: platform.mqttUrl,
      s3: { endpoint: platform.s3Endpoint, bucket: platform.options.bucket },
      dataDir: path.join(dir, 'fleet'),
      run: { rows: 64, columns: 64, frames: 12 },
      profile: { meanIdleMs: 200, meanProcedureMs: 60_000, meanRunIntervalMs: 300 },
    }, {}, { info: () => undefined, warn: () => undefined, error: () => undefined });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    try {
      while ((await platform.status()).requests.ok < 4) await new Promise((r) => setTimeout(r, 100));
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const cspViolations: string[] = [];
      const pageErrors: string[] = [];
      page.on('console', (m) => {
        if (m.text().includes('Content Security Policy')) cspViolations.push(m.text());
      });
      page.on('pageerror', (err) => pageErrors.push(err.message));
      // Signs in as an operator would from the link `arteria up` prints; the page then opens the dashboard.
      await page.goto(`${platform.http.url}/login#token=${platform.options.opsToken}`);
      await page.waitForURL(`${platform.http.url}/`);
      await until('4 ok requests', async () => Number(await page.locator('#requests-ok').innerText()) >= 4);
      await until('results and the latency chart', async () => (await page.locator('#results tr').count()) >= 4 && (await page.locator('#latency rect').count()) > 0);
      expect(Number(await page.locator('#devices-online').innerText())).toBe(3);
      expect(await page.locator('#latency').textContent()).toMatch(/p50 [\d.]+ · p95 [\d.]+ · p99 [\d.]+ ms/);

      // History: four uPlot charts (canvas) with their series, from several one-second intervals.
      await until('history charts of 3+ intervals', async () => Number(await page.locator('body').getAttribute('data-history-points')) >= 3);
      expect(await page.locator('.charts .uplot canvas').count()).toBe(4);
      const legends = await page.locator('.charts .u-legend').allInnerTexts();
      expect(legends.join(' ')).toMatch(/p50[\s\S]*p95[\s\S]*p99/);
      expect(legends.join(' ')).toMatch(/desired[\s\S]*actual/);
      await shot(page, 'overview');
      // The README's picture: cards, the hour's charts and the stage latency, one screen, while the fleet runs.
      await page.setViewportSize({ width: 1200, height: 1250 });
      await page.screenshot({ path: process.env.ARTERIA_DASHBOARD_SCREENSHOT ?? path.join(await testArtifactDir('dashboard'), 'dashboard.png') });

      // The fleet: every simulated device online with its gateway version.
      expect(await page.locator('#devices tr td:nth-child(1)').allInnerTexts()).toEqual(expect.arrayContaining(['demo/sim-001', 'demo/sim-002', 'demo/sim-003']));
      expect(await page.locator('#devices tr td:nth-child(2)').allInnerTexts()).toEqual(['online', 'online', 'online']);
      expect(await page.locator('#devices tr td:nth-child(5)').allInnerTexts()).toEqual(['0.1.0', '0.1.0', '0.1.0']);

      // Stop the fleet; once the queue is empty, the results and a request page, then a dead
      // letter: stop the workers, queue a task of an answered request, and let it fail.
      await fleet.close();
      for (let q = await platform.queue.stats(); q.ready + q.inFlight + q.delayed > 0; q = await platform.queue.stats()) await new Promise((r) => setTimeout(r, 50));

      // Recent results, once the backlog is answered: on a busy machine the fleet outpaces
      // the workers, and the newest rows of a running fleet may all still be accepted.
      await until('an answered row among the recent results', async () => (await page.locator('#results tr:has(td.ok)').count()) > 0);
      expect(await page.locator('#results').innerText()).toMatch(/contrast-injection@1\.0\.0|balloon-inflation@3\.2\.0/);
      // The request page: from a result's link to its timeline, version, digest and ledger records.
      // Searched by id, as an operator pastes one from a log line (the table's links lead to the same view).
      const href = (await page.locator('#results tr:has(td.ok) a').first().getAttribute('href')) ?? '';
      const requestId = href.replace('#request=', '');
      await page.fill('#request-id', requestId);
      await page.click('#request-form button');
      await until('the request page', async () => (await page.locator('body').getAttribute('data-request-shown')) === requestId);
      expect(page.url()).toContain(`#request=${requestId}`);
      const view = await page.locator('#request-view').innerText();
      expect(view).toMatch(/artifact digest\s+sha256:[0-9a-f]{64}/);
      expect(view).toMatch(/contrast-injection@1\.0\.0|balloon-inflation@3\.2\.0/);
      expect(view).toMatch(/result hash\s+sha256:/);
      expect(view).toMatch(/accepted\s+[0-9a-f]{64}[\s\S]*intact[\s\S]*completed\s+[0-9a-f]{64}[\s\S]*intact/);
      expect(await page.locator('#request-timeline rect').count()).toBeGreaterThanOrEqual(5);
      await page.locator('#request-view').screenshot({ path: path.join(await testArtifactDir('dashboard'), 'request.png') });

      await platform.pool.close();
      const [answered] = await platform.ledger.recent(1);
      if (answered?.request === undefined || answered.result?.algorithm === undefined) throw new Error('no answered request with its request and algorithm');
      await platform.queue.enqueue(encodeTask({ v: 1, request: answered.request, algorithm: answered.result.algorithm }), { dedupeId: `${answered.requestId}/browser-test` });
      const [lease] = await platform.queue.lease({ max: 1, visibilityMs: 30_000, waitMs: 1_000 });
      if (lease === undefined) throw new Error('the queued task was not leased');
      await platform.queue.deadLetter(lease, 'test: worker died 5 times');
      await until('the dead letter', async () => (await page.locator('#dead-letters tr').count()) === 1);
      expect(await page.locator('#dead-letters').innerText()).toContain('worker died 5 times');
      await page.locator('#dead-letters button', { hasText: 'inspect' }).click();
      await until('the inspected letter', async () => (await page.locator('#dead-letter-view pre').count()) === 1);
      expect(await page.locator('#dead-letter-view pre').innerText()).toContain(answered.requestId);
      await shot(page, 'dead-letters');
      // Replay asks first, then POSTs with the session's CSRF token; the ledger already answered it, so it is cleared.
      page.once('dialog', (d) => void d.accept());
      await page.locator('#dead-letters button.replay').click();
      await until('the replay outcome', async () => (await page.locator('#dead-letter-view').getAttribute('data-outcome')) !== null);
      expect(await page.locator('#dead-letter-view').getAttribute('data-outcome')).toBe('already-completed');
      await until('an empty dead-letter table', async () => (await page.locator('#dead-letters tr').count()) === 0);
      expect(await platform.queue.deadLetters(10)).toEqual([]);

      expect(cspViolations).toEqual([]); // the page's own scripts and the chart library run under its own policy
      expect(pageErrors).toEqual([]);
    } finally {
      await browser.close();
      await fleet.close();
      await platform.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
