import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { epochNow, toArteriaError, type ResultV1 } from '@arteria/protocol';
import { AlgorithmRegistry, AlgorithmRunner, ArtifactStore } from '@arteria/worker';
import { CanaryGuard, EntitlementPolicy } from '@arteria/ingest';
import { EMBEDDED_S3_CREDENTIALS } from '../src/embedded/embedded-platform.js';
import { EmbeddedObjectStore, createS3Client, s3ObjectBucket } from '@arteria/engine-s3';
import { SqliteRequestLedger } from '@arteria/engine-sqlite';
import { createLogger } from '@arteria/telemetry';
import { freePort } from '@arteria/testing';
import { fixtureAlgorithm, tempDir } from './support/platform.js';

const FIXTURE = fixtureAlgorithm('throws');
const RUN = synthesizeXaRun({ seed: 3, rows: 32, columns: 32, frames: 2, frameRateHz: 15, bitsStored: 8, contrast: null }).bytes;
const BUCKET = 'arteria-runs';
const ENTITLEMENTS = { acme: { algorithms: ['flaky@1.x'], canaries: { flaky: { version: '1.1.0', percent: 50, rollback: { minSamples: 8, maxErrorRateIncrease: 0.1 } } } } };

/**
 * A canary that fails on purpose: flaky@1.1.0 throws on every run, 1.0.0 answers. Requests
 * from a fleet of devices are admitted with the tenant's entitlements, run by the isolated
 * runner and recorded in a real ledger; the guard withdraws the canary once both sides
 * have their minimum sample, stores the withdrawal in the artifact store and logs it.
 */
describe('canary guard', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const objects = new EmbeddedObjectStore();
  let store: ArtifactStore;
  let registry: AlgorithmRegistry;
  const runner = new AlgorithmRunner({ threadsPerAlgorithm: 1 });
  let ledger: SqliteRequestLedger;
  const logged: string[] = [];
  let s3: ReturnType<typeof createS3Client>;

  async function version(v: string, code: string): Promise<string> {
    const dir = path.join(tmp.dir, `flaky-${v}`);
    await cp(FIXTURE, dir, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, name: 'flaky', version: v }));
    await writeFile(path.join(dir, 'lib', 'index.js'), code);
    return dir;
  }

  beforeAll(async () => {
    tmp = await tempDir('canary');
    await mkdir(path.join(tmp.dir, 'objects'));
    await objects.start({ host: '127.0.0.1', port: await freePort(), directory: path.join(tmp.dir, 'objects'), buckets: [BUCKET] });
    s3 = createS3Client({ endpoint: objects.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    store = new ArtifactStore(s3ObjectBucket(s3, BUCKET));
    registry = await AlgorithmRegistry.load([
      await version('1.0.0', 'export default { run({ frames }) { return { frames: frames.frameCount }; } };\n'),
      await version('1.1.0', "export default { run() { throw new Error('this canary fails on purpose'); } };\n"),
    ]);
    ledger = new SqliteRequestLedger({ path: path.join(tmp.dir, 'ledger.db') });
  }, 60_000);

  afterAll(async () => {
    await runner.close();
    await ledger.close();
    s3.destroy();
    await objects.close();
    await tmp.remove();
  });

  /** Admits, runs and records one request of `device` as ingest and a worker would; returns the version it ran. */
  async function serve(policy: EntitlementPolicy, device: string, n: number): Promise<string> {
    const algorithm = registry.resolve('flaky@1.x', policy.rangesFor('acme', device, 'flaky'));
    const leased = epochNow();
    const base = { v: 1 as const, requestId: `req-${device}-${n}`.padEnd(32, '0'), tenant: 'acme', device, algorithm: algorithm.ref };
    let result: ResultV1;
    try {
      // A copy each time: the runner hands the bytes over to the algorithm's thread.
      const { output } = await runner.run(algorithm, new Uint8Array(RUN));
      result = { ...base, status: 'ok', output, timings: { leased, computed: epochNow() } };
    } catch (err) {
      const error = toArteriaError(err);
      result = { ...base, status: 'failed', error: { code: error.code, message: error.message }, timings: { leased, computed: epochNow() } };
    }
    await ledger.recordResult(result);
    return algorithm.manifest.version;
  }

  it('withdraws a canary whose error rate regresses past its bound, and every ingest honours it', { timeout: 120_000 }, async () => {
    const policy = EntitlementPolicy.parse(ENTITLEMENTS);
    const logger = createLogger({ role: 'ingest', destination: new Writable({ write: (chunk: Buffer, _enc, done) => void (logged.push(chunk.toString()), done()) }) });
    const guard = new CanaryGuard({ ledger, policy, store, instance: 'ingest-0', window: 1_000, intervalMs: 60_000, logger });
    await guard.start();
    try {
      const devices = Array.from({ length: 40 }, (_, i) => `dev-${i}`);
      const inShare = devices.filter((d) => EntitlementPolicy.inCanary('acme', d, 50));
      expect(inShare.length).toBeGreaterThan(8);
      expect(inShare.length).toBeLessThan(32);

      // Too few canary results yet: nothing is judged.
      const early = await Promise.all(devices.slice(0, 6).map((d) => serve(policy, d, 0)));
      expect(early.filter((v) => v === '1.1.0').length).toBeLessThan(8);
      expect(await guard.check()).toEqual([]);

      const versions = new Map<string, string>();
      for (const d of devices) versions.set(d, await serve(policy, d, 1));
      expect([...versions.values()].filter((v) => v === '1.1.0').length).toBe(inShare.length);
      const [withdrawal, ...more] = await guard.check();
      expect(more).toEqual([]);
      expect(withdrawal).toMatchObject({ tenant: 'acme', algorithm: 'flaky', version: '1.1.0', by: 'ingest-0', canary: { errorRate: 1 }, others: { errorRate: 0 } });
      expect(withdrawal?.reason).toMatch(/^error rate 100\.0 % against 0\.0 %/);
      // Withdrawn: every device, canary share included, gets the released version again.
      for (const d of inShare) expect(await serve(policy, d, 2)).toBe('1.0.0');
      // Recorded for operators (a security event) and in the store.
      expect(logged.some((line) => /"type":"security".*"event":"canary-withdrawn".*acme\/flaky@1\.1\.0/.test(line))).toBe(true);
      expect(await store.listWithdrawals()).toEqual([withdrawal]);
    } finally {
      await guard.close();
    }

    // Another ingest process (or this one restarted) reads the same entitlements file: the stored withdrawal holds.
    const restarted = EntitlementPolicy.parse(ENTITLEMENTS);
    const other = new CanaryGuard({ ledger, policy: restarted, store, instance: 'ingest-1', window: 1_000, intervalMs: 60_000 });
    await other.start();
    await other.close();
    expect(other.state).toBe('closed');
    await expect(other.check()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    const someCanaryDevice = Array.from({ length: 40 }, (_, i) => `dev-${i}`).find((d) => EntitlementPolicy.inCanary('acme', d, 50)) ?? '';
    expect(registry.resolve('flaky@1.x', restarted.rangesFor('acme', someCanaryDevice, 'flaky')).manifest.version).toBe('1.0.0');
  });

  it('leaves a canary alone that does as well as the released version', { timeout: 60_000 }, async () => {
    const policy = EntitlementPolicy.parse({ acme: { algorithms: ['flaky@1.0.x'], canaries: { flaky: { version: '1.0.0', percent: 50, rollback: { minSamples: 1 } } } } });
    const guard = new CanaryGuard({ ledger, policy, store, instance: 'ingest-0', window: 1_000, intervalMs: 60_000 });
    expect(guard.watching).toBe(true);
    // 1.0.0 against the others in the window (1.1.0, all failed): better, not worse.
    expect(await guard.check()).toEqual([]);
    expect(policy.isWithdrawn('acme', 'flaky', '1.0.0')).toBe(false);
  });
});
