import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { EntitlementPolicy } from '@arteria/ingest';
import { TestDevice } from '@arteria/testing';
import { SECRET, fixtureAlgorithm, startPlatform, tempDir } from './support/platform.js';

const BUCKET = 'arteria-runs';
const ENTITLEMENTS = { acme: { algorithms: ['flaky@1.x'], canaries: { flaky: { version: '1.1.0', percent: 50, rollback: { minSamples: 3, maxErrorRateIncrease: 0.1 } } } } };

/**
 * `arteria up` withdraws a regressing canary by itself, as cluster ingest does: flaky@1.1.0
 * throws on every run, 1.0.0 answers; once both sides have their minimum sample the
 * embedded platform withdraws the canary, its devices get 1.0.0 again, and a restart on
 * the same data folder keeps it withdrawn.
 */
describe('embedded platform: automatic canary rollback', () => {
  it('withdraws a canary whose error rate regresses, serves the version below, and keeps it withdrawn after a restart', { timeout: 120_000 }, async () => {
    const tmp = await tempDir('arteria-embedded-canary-');
    const version = async (v: string, code: string): Promise<string> => {
      const dir = path.join(tmp.dir, `flaky-${v}`);
      await cp(fixtureAlgorithm('throws'), dir, { recursive: true });
      const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, name: 'flaky', version: v }));
      await writeFile(path.join(dir, 'lib', 'index.js'), code);
      return dir;
    };
    const algorithmDirs = [
      await version('1.0.0', 'export default { run({ frames }) { return { frames: frames.frameCount }; } };\n'),
      await version('1.1.0', "export default { run() { throw new Error('this canary fails on purpose'); } };\n"),
    ];
    const devices = Array.from({ length: 40 }, (_, i) => `cath-lab-${i}`);
    const inShare = devices.find((d) => EntitlementPolicy.inCanary('acme', d, 50)) ?? '';
    const outside = devices.find((d) => !EntitlementPolicy.inCanary('acme', d, 50)) ?? '';
    const options = { algorithmDirs, entitlements: ENTITLEMENTS, canaryCheckIntervalMs: 100 };
    let started = await startPlatform(path.join(tmp.dir, 'data'), options);
    const connected: TestDevice[] = [];
    try {
      const canary = await TestDevice.connect(started.platform.mqttUrl, SECRET, 'acme', inShare);
      const other = await TestDevice.connect(started.platform.mqttUrl, SECRET, 'acme', outside);
      connected.push(canary, other);
      const sent = [];
      for (let seed = 1; seed <= 3; seed += 1) sent.push(await canary.send(started.s3, BUCKET, 'flaky@1.x', 2, seed), await other.send(started.s3, BUCKET, 'flaky@1.x', 2, 100 + seed));
      const results = await canary.waitFor(sent.filter((r) => r.device === inShare).map((r) => r.id));
      expect(results.map((r) => [r.status, r.algorithm?.version, r.error?.code])).toEqual(Array(3).fill(['failed', '1.1.0', 'ALGORITHM_FAILED']));
      expect((await other.waitFor(sent.filter((r) => r.device === outside).map((r) => r.id))).map((r) => r.algorithm?.version)).toEqual(['1.0.0', '1.0.0', '1.0.0']);

      // Judged and withdrawn without a restart; the canary's device is served 1.0.0 again.
      await vi.waitFor(() => expect(started.platform.entitlements?.isWithdrawn('acme', 'flaky', '1.1.0')).toBe(true), { timeout: 30_000 });
      const after = await canary.send(started.s3, BUCKET, 'flaky@1.x', 2, 7);
      expect((await canary.waitFor([after.id]))[0]).toMatchObject({ status: 'ok', algorithm: { name: 'flaky', version: '1.0.0' } });

      // A restart on the same data folder reads the stored withdrawal before the first request.
      await Promise.all(connected.splice(0).map((d) => d.close()));
      started.s3.destroy();
      await started.platform.close();
      started = await startPlatform(path.join(tmp.dir, 'data'), options);
      expect(started.platform.entitlements?.isWithdrawn('acme', 'flaky', '1.1.0')).toBe(true);
    } finally {
      await Promise.all(connected.map((d) => d.close()));
      started.s3.destroy();
      await started.platform.close();
      await tmp.remove();
    }
  });
});
