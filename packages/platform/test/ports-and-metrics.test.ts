import { createServer } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { ArteriaError, encodePayload } from '@arteria/protocol';
import { EmbeddedPlatform } from '../src/embedded/embedded-platform.js';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

describe('ports', () => {
  it.each([
    ['mqttPort', '--mqtt-port'],
    ['s3Port', '--s3-port'],
    ['httpPort', '--http-port'],
  ])('a taken %s fails with PORT_IN_USE naming %s, and nothing is left running', async (option, flag) => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const address = blocker.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const tmp = await tempDir('ports');
    try {
      const error = await EmbeddedPlatform.start({
        mqttPort: 0,
        s3Port: 0,
        httpPort: 0,
        [option]: port,
        dataDir: tmp.dir,
        tenants: { acme: SECRET },
        algorithmDirs: [fixtureAlgorithm('echo')],
      }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ArteriaError);
      expect((error as ArteriaError).code).toBe('PORT_IN_USE');
      expect((error as ArteriaError).message).toContain(flag);
      expect((error as ArteriaError).message).toContain(String(port));
    } finally {
      blocker.close();
      await tmp.remove();
    }
  });
});

describe('operations endpoints', () => {
  it('serve Prometheus metrics with stage histograms, health, readiness and status', async () => {
    const tmp = await tempDir('metrics');
    const { platform, s3 } = await startPlatform(tmp.dir);
    const device = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
    try {
      const run = synthesizeXaRun({ seed: 3, rows: 32, columns: 32, frames: 6, bitsStored: 8 });
      const request = await device.prepare(s3, 'arteria-runs', run.bytes, 'echo@^1');
      await device.publishRaw(encodePayload(request));
      await device.next((r) => r.requestId === request.id);

      const metrics = await (await fetch(`${platform.http.url}/metrics`, { headers: { authorization: `Bearer ${platform.options.opsToken}` } })).text();
      expect(metrics).toMatch(/arteria_stage_duration_seconds_bucket\{le="[^"]+",stage="leased"\}/);
      expect(metrics).toMatch(/arteria_platform_overhead_seconds_count 1/);
      expect(metrics).toMatch(/arteria_requests_total\{outcome="accepted",code=""\} 1/);
      expect(metrics).toMatch(/arteria_results_total\{status="ok",code="",algorithm="echo"\} 1/);
      expect(metrics).toMatch(/arteria_workers 2/);
      // Without autoscale the embedded pool is what was asked for: desired equals running.
      expect(metrics).toMatch(/arteria_workers_desired 2/);
      expect(metrics).toMatch(/arteria_algorithm_duration_seconds_count\{algorithm="echo",version="1\.0\.0",status="ok"\} 1/);
      // The process's own health, on the platform's registry.
      expect(metrics).toMatch(/^process_cpu_seconds_total \d/m);
      expect(metrics).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
      expect((await fetch(`${platform.http.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${platform.http.url}/readyz`)).status).toBe(200);
      const status = (await (await fetch(`${platform.http.url}/api/status`, { headers: { authorization: `Bearer ${platform.options.opsToken}` } })).json()) as { requests: { ok: number } };
      expect(status.requests.ok).toBe(1);
    } finally {
      await device.close();
      s3.destroy();
      await platform.close();
      await tmp.remove();
    }
  });
});
