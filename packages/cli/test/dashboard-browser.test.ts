import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { SimulatedFleet } from '@arteria/fleet';
import { EmbeddedPlatform } from '@arteria/platform';

const SECRET = 'dashboard-tenant-secret-0123456789';
const algorithmDir = (name: string): string => path.dirname(fileURLToPath(import.meta.resolve(`@arteria/${name}/manifest.json`)));

/** The operator's page, in a real browser (Debian's chromium), while a simulated fleet sends runs. */
describe('dashboard in a browser', () => {
  it('renders live numbers, the results table and the stage-latency chart', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-dashboard-'));
    const platform = await EmbeddedPlatform.start({
      mqttPort: 0,
      s3Port: 0,
      httpPort: 0,
      dataDir: path.join(dir, 'platform'),
      tenants: { demo: SECRET },
      algorithmDirs: [algorithmDir('contrast-injection'), algorithmDir('balloon-inflation')],
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
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    try {
      while ((await platform.status()).requests.ok < 6) await new Promise((r) => setTimeout(r, 100));
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const cspViolations: string[] = [];
      page.on('console', (m) => {
        if (m.text().includes('Content Security Policy')) cspViolations.push(m.text());
      });
      // Signs in as an operator would from the link \`arteria up\` prints; the page then opens the dashboard.
      await page.goto(`${platform.http.url}/login#token=${platform.options.opsToken}`);
      await page.waitForURL(`${platform.http.url}/`);
      // Polled through locators: the page's CSP forbids eval, which page.waitForFunction needs.
      const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
        const deadline = Date.now() + 15_000;
        while (!(await check())) {
          if (Date.now() > deadline) throw new Error(`the dashboard did not show ${what} within 15 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await until('6 ok requests', async () => Number(await page.locator('#requests-ok').innerText()) >= 6);
      await until('results and the latency chart', async () => (await page.locator('#results tr').count()) >= 6 && (await page.locator('#latency rect').count()) > 0);
      expect(cspViolations).toEqual([]); // the page's own script runs under its own policy
      const text = await page.locator('body').innerText();
      expect(text).toMatch(/contrast-injection@1\.0\.0|balloon-inflation@1\.0\.0/);
      expect(Number(await page.locator('#devices-online').innerText())).toBe(3);
      expect(await page.locator('#results tr').count()).toBeGreaterThanOrEqual(6);
      if (process.env.ARTERIA_DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.ARTERIA_DASHBOARD_SCREENSHOT, fullPage: true });
    } finally {
      await browser.close();
      await fleet.close();
      await platform.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
