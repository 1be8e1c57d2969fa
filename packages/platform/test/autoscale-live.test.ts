import { describe, expect, it } from 'vitest';
import { SimulatedFleet } from '@arteria/fleet';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, test: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

describe('live autoscaling of the embedded worker pool', () => {
  it('grows the pool under a 10x burst from the simulated fleet, loses nothing, then drains back down', async () => {
    const tmp = await tempDir('autoscale');
    const { platform, s3 } = await startPlatform(tmp.dir, {
      workers: 1,
      threadsPerAlgorithm: 24,
      algorithmDirs: [fixtureAlgorithm('sleepy')],
      autoscale: { minWorkers: 1, maxWorkers: 24, intervalMs: 200, waitBudgetMs: 500, epsilon: 1e-3, serviceMs: 250, serviceCv: 0.2, scaleInDelayMs: 2_000, rateSmoothingMs: 2_000 },
    });
    const waits: number[] = [];
    const fleet = await SimulatedFleet.start(
      {
        devices: 6,
        tenant: 'acme',
        tenantSecret: SECRET,
        mqttUrl: platform.mqttUrl,
        s3: { endpoint: platform.s3Endpoint, bucket: 'arteria-runs' },
        dataDir: `${tmp.dir}/fleet`,
        algorithms: ['sleepy@^1'],
        run: { rows: 32, columns: 32, frames: 4 },
        // Every device in a procedure, a run every ~3 s each: base load ~2 requests/s.
        profile: { meanIdleMs: 10, meanProcedureMs: 600_000, meanRunIntervalMs: 3_000 },
      },
      {
        onResult: (_device, result) => {
          const t = result.timings;
          if (t.enqueued !== undefined && t.leased !== undefined) waits.push(t.leased - t.enqueued);
        },
      },
    );
    try {
      const autoscaler = platform.autoscaler;
      expect(autoscaler?.state).toBe('running');
      await sleep(3_000);
      const before = platform.pool.size;
      let peak = before;
      const watch = setInterval(() => (peak = Math.max(peak, platform.pool.size)), 50);
      try {
        // 10x: five bursts of three runs per device, one a second (~18 requests/s on top of ~2).
        for (let i = 0; i < 5; i += 1) {
          fleet.burst(3);
          await sleep(1_000);
        }
        await until('every request answered', () => {
          const s = fleet.stats();
          return s.received >= s.sent && s.sent > 0;
        }, 60_000);
      } finally {
        clearInterval(watch);
      }
      const afterBurst = fleet.stats();
      // Gateway errors are retryable (a late result is resent and deduplicated); losses show as unanswered runs.
      expect(afterBurst.failed).toBe(0);
      expect(afterBurst.rejected).toBe(0);
      expect(peak).toBeGreaterThan(before);
      expect(peak).toBeGreaterThanOrEqual(4);

      // The burst is over: the pool drains back towards the base load, still losing nothing.
      await until('scale-in', () => platform.pool.size < peak, 20_000);
      await until('every request answered', () => fleet.stats().received >= fleet.stats().sent, 30_000);
      const counts = await platform.ledger.counts();
      expect(counts.completed).toBe(counts.accepted);
      expect(counts.failed).toBe(0);
      expect((await platform.queue.stats()).deadLettered).toBe(0);

      const sorted = [...waits].sort((a, b) => a - b);
      const report = {
        requests: fleet.stats().received,
        gatewayRetries: fleet.stats().errors,
        workersBefore: before,
        workersPeak: peak,
        workersAfter: platform.pool.size,
        waitMs: { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), max: sorted.at(-1) },
        overBudget: sorted.filter((w) => w > 500).length,
      };
      console.log(`live autoscaling under a 10x burst: ${JSON.stringify(report)}`);
      expect(waits.length).toBe(fleet.stats().received);
    } finally {
      await fleet.close();
      s3.destroy();
      await platform.close();
      await tmp.remove();
    }
  }, 120_000);
});
