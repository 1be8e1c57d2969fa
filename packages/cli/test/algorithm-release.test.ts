import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTERIA_PROGRAM } from '@arteria/cli';
import { EXIT, runProgram } from '@arteria/command';
import { EMBEDDED_S3_CREDENTIALS, loadRoleAlgorithms, parseClusterConfig, type ClusterConfigInput } from '@arteria/platform';
import { EmbeddedObjectStore, createS3Client } from '@arteria/engine-s3';
import { CLI, ClusterDevice, NAP_DIR, RoleProcess, freePort, until, waitForPort } from './support/cluster.js';

const run = promisify(execFile);
const BUCKET = 'arteria-runs';
const PREFIX = '_algorithms/';
const TENANT_SECRET = 'release-tenant-secret-0123456789';
const PLATFORM_SECRET = 'release-platform-secret-0123456789';

/** Exit 0 and stdout matching `pattern`. */
function expectOk(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r, r.stderr).toMatchObject({ code: EXIT.ok });
  expect(r.stdout).toMatch(pattern);
}

async function arteria(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const code = await runProgram(ARTERIA_PROGRAM, argv, { stdout: (t) => (out.stdout += t), stderr: (t) => (out.stderr += t) });
  return { code, ...out };
}

/**
 * The release path on a real S3-API store (the embedded one): an operator packs, signs
 * and publishes with the CLI, promotes to released, and worker and ingest processes that
 * read the store fetch the version by digest, verify it and run it; nothing is rebuilt.
 */
describe('artifact store: publish, promote, retire; workers fetch and verify', () => {
  let dir: string;
  const store = new EmbeddedObjectStore();
  let s3: S3Client;
  let deployment: string;
  const at = (...parts: string[]): string => path.join(dir, ...parts);
  /** The worker configuration the library-level checks load with (a fresh cache each time unless named). */
  const config = (over: Partial<NonNullable<ClusterConfigInput['algorithms']>> = {}, cache = `cache-${Math.random().toString(16).slice(2)}`) =>
    parseClusterConfig({
      dataDir: dir,
      s3: { endpoint: store.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      algorithms: { bundled: false, fromStore: true, trustedKeyFiles: [at('keys', 'release.pub')], requireSignatures: true, cacheDir: at(cache), ...over },
    });

  /** A copy of the nap fixture at `version`, packed (and signed unless `sign` is false); returns the artifact path. */
  async function packVersion(version: string, sign = true, edit?: (code: string) => string): Promise<string> {
    const pkg = at(`nap-${version}`);
    await cp(NAP_DIR, pkg, { recursive: true });
    if (edit) await writeFile(path.join(pkg, 'lib', 'index.js'), edit(await readFile(path.join(pkg, 'lib', 'index.js'), 'utf8')));
    const manifest = JSON.parse(await readFile(path.join(pkg, 'manifest.json'), 'utf8')) as { version: string };
    manifest.version = version;
    await writeFile(path.join(pkg, 'manifest.json'), JSON.stringify(manifest, null, 2));
    const packed = await arteria('algorithm', 'pack', pkg, '--out', at('artifacts'), '--skip-tests');
    expect(packed).toMatchObject({ code: EXIT.ok, stderr: '' });
    const file = /artifact (\S+\.tar)/.exec(packed.stdout)?.[1] ?? '';
    if (sign) expect(await arteria('algorithm', 'sign', file, '--key', at('keys', 'release.key'))).toMatchObject({ code: EXIT.ok });
    return file;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-release-'));
    await store.start({ host: '127.0.0.1', port: await freePort(), directory: at('objects'), buckets: [BUCKET] });
    s3 = createS3Client({ endpoint: store.endpoint, ...EMBEDDED_S3_CREDENTIALS, forcePathStyle: true });
    deployment = at('deployment.yaml');
    await writeFile(deployment, `s3: { endpoint: "${store.endpoint}", bucket: ${BUCKET}, accessKeyId: S3RVER, secretAccessKey: S3RVER }\n`);
    expect(await arteria('algorithm', 'keygen', at('keys', 'release'))).toMatchObject({ code: EXIT.ok });
  }, 60_000);

  afterAll(async () => {
    s3?.destroy();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  let contentDigest = '';

  it('publishes a signed artifact as dev, promotes it one stage at a time, and lists it', { timeout: 60_000 }, async () => {
    const artifact = await packVersion('2.0.0');
    const published = await arteria('algorithm', 'publish', artifact, '--key', at('keys', 'release.key'), '--to', deployment);
    expect(published).toMatchObject({ code: EXIT.ok, stderr: '' });
    expect(published.stdout).toMatch(/^published nap@2\.0\.0 \(dev\)/);
    contentDigest = /content (sha256:[0-9a-f]{64})/.exec(published.stdout)?.[1] ?? '';
    expect(contentDigest).not.toBe('');
    // The same artifact again changes nothing; a different one under the same version is refused.
    expect((await arteria('algorithm', 'publish', artifact, '--to', deployment)).stdout).toMatch(/^already published nap@2\.0\.0 \(dev\)/);

    // dev is loaded nowhere.
    expect((await loadRoleAlgorithms(config(), 'worker', [])).registry.list()).toEqual([]);
    const missing = await arteria('algorithm', 'promote', 'nap@9.9.9', '--to', deployment);
    expect(missing.code).not.toBe(EXIT.ok);
    expect(missing.stderr).toMatch(/RELEASE_REFUSED.*not published/s);
    expectOk(await arteria('algorithm', 'promote', 'nap@2.0.0', '--key', at('keys', 'release.key'), '--to', deployment), /^nap@2\.0\.0 is validated \(signed by [0-9a-f]{16}\)/);
    expectOk(await arteria('algorithm', 'promote', 'nap@2.0.0', '--key', at('keys', 'release.key'), '--to', deployment), /^nap@2\.0\.0 is released/);
    const again = await arteria('algorithm', 'promote', 'nap@2.0.0', '--to', deployment);
    expect(again.stderr).toMatch(/RELEASE_REFUSED.*is released; it cannot move to released/s);

    const listed = await arteria('algorithm', 'list', '--json', '--to', deployment);
    const records = JSON.parse(listed.stdout) as { name: string; version: string; stage: string; contentDigest: string; history: { stage: string }[] }[];
    expect(records).toEqual([expect.objectContaining({ name: 'nap', version: '2.0.0', stage: 'released', contentDigest })]);
    expect(records[0]?.history.map((h) => h.stage)).toEqual(['dev', 'validated', 'released']);
  });

  it('a worker configuration fetches the released version by digest, verifies it, caches it and names its digest', { timeout: 60_000 }, async () => {
    const first = await loadRoleAlgorithms(config({}, 'cache-kept'), 'worker', []);
    expect(first.fromStore.map((s) => ({ version: s.record.version, fetched: s.fetched }))).toEqual([{ version: '2.0.0', fetched: true }]);
    const loaded = first.registry.resolve('nap@^2');
    expect(loaded.ref).toMatchObject({ name: 'nap', version: '2.0.0', digest: contentDigest });
    expect(loaded.signedBy).toMatch(/^[0-9a-f]{16}$/);
    // The next start finds it whole in the cache and fetches nothing.
    const second = await loadRoleAlgorithms(config({}, 'cache-kept'), 'worker', []);
    expect(second.fromStore.map((s) => s.fetched)).toEqual([false]);
  });

  it('refuses an unsigned version where signatures are required, and loads it where they are not', { timeout: 60_000 }, async () => {
    const artifact = await packVersion('2.1.0', false);
    expectOk(await arteria('algorithm', 'publish', artifact, '--to', deployment), /unsigned/);
    expect((await arteria('algorithm', 'promote', 'nap@2.1.0', '--to', deployment)).code).toBe(EXIT.ok);
    expect((await arteria('algorithm', 'promote', 'nap@2.1.0', '--to', deployment)).code).toBe(EXIT.ok);
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toMatchObject({ code: 'ARTIFACT_UNSIGNED' });
    const open = await loadRoleAlgorithms(config({ requireSignatures: false }), 'worker', []);
    expect(open.registry.list().map((a) => [a.manifest.version, a.signedBy === undefined])).toEqual([
      ['2.0.0', false],
      ['2.1.0', true],
    ]);
    expectOk(await arteria('algorithm', 'retire', 'nap@2.1.0', '--to', deployment), /^nap@2\.1\.0 is retired/);
    // Retired is final.
    expect((await arteria('algorithm', 'promote', 'nap@2.1.0', '--to', deployment)).stderr).toMatch(/RELEASE_REFUSED.*is retired/s);
  });

  it('refuses an archive changed in the bucket, and a release record edited without the key', { timeout: 60_000 }, async () => {
    const listed = JSON.parse((await arteria('algorithm', 'list', '--json', '--to', deployment)).stdout) as { version: string; archiveDigest: string }[];
    const hex = listed.find((r) => r.version === '2.0.0')?.archiveDigest.slice(7) ?? '';
    const archiveKey = `${PREFIX}artifacts/sha256/${hex}.tar`;
    const original = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: archiveKey }))).Body!.transformToByteArray());
    const changed = Buffer.from(original);
    changed[changed.length - 2048] = (changed[changed.length - 2048] ?? 0) ^ 1;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: archiveKey, Body: changed }));
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toThrow(/changed in the bucket/);
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toMatchObject({ code: 'ARTIFACT_INVALID' });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: archiveKey, Body: original }));

    // Someone with write access to the bucket, but not the key, re-releases the retired version.
    const recordKey = `${PREFIX}releases/nap/2.1.0.json`;
    const record = JSON.parse(Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: recordKey }))).Body!.transformToByteArray()).toString('utf8')) as { stage: string; history: { stage: string }[]; stageSignature: string | null };
    const signed = JSON.parse(Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}releases/nap/2.0.0.json` }))).Body!.transformToByteArray()).toString('utf8')) as { stageSignature: string; history: { keyId: string }[] };
    const forged = { ...record, stage: 'released', history: [...record.history, { ...signed.history.at(-1), stage: 'released' }], stageSignature: signed.stageSignature };
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: recordKey, Body: JSON.stringify(forged) }));
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toThrow(/nap@2\.1\.0.*does not verify/);
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toMatchObject({ code: 'ARTIFACT_SIGNATURE_INVALID' });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: recordKey, Body: JSON.stringify(record) }));
  });

  it('a shadow plan is signed like a stage change: unsigned or edited without the key, workers refuse it where signatures are required', { timeout: 60_000 }, async () => {
    const candidate = await packVersion('2.4.0');
    expectOk(await arteria('algorithm', 'publish', candidate, '--key', at('keys', 'release.key'), '--to', deployment), /published nap@2\.4\.0 \(dev\)/);
    expectOk(await arteria('algorithm', 'shadow', 'nap@2.4.0', '--percent', '10', '--to', deployment), /shadows 10 %.*\(unsigned\)/);
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toMatchObject({ code: 'ARTIFACT_UNSIGNED', message: expect.stringMatching(/shadow plan nap@2\.4\.0/) as unknown });
    // Ingest never runs shadows: the plan is no concern of it; a deployment without required signatures runs it.
    expect((await loadRoleAlgorithms(config(), 'ingest', [])).registry.list().map((a) => a.manifest.version)).toEqual(['2.0.0']);
    expect((await loadRoleAlgorithms(config({ requireSignatures: false, trustedKeyFiles: [] }), 'worker', [])).shadows).toMatchObject([{ version: '2.4.0', percent: 10 }]);

    expectOk(await arteria('algorithm', 'shadow', 'nap@2.4.0', '--percent', '10', '--key', at('keys', 'release.key'), '--to', deployment), /shadows 10 %.*signed by [0-9a-f]{16}/);
    expect((await loadRoleAlgorithms(config(), 'worker', [])).shadows).toMatchObject([{ name: 'nap', version: '2.4.0', percent: 10 }]);
    // Someone with write access to the bucket, not the key, widens the share.
    const planKey = `${PREFIX}shadows/nap.json`;
    const plan = JSON.parse(Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: planKey }))).Body!.transformToByteArray()).toString('utf8')) as { percent: number };
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: planKey, Body: JSON.stringify({ ...plan, percent: 100 }) }));
    await expect(loadRoleAlgorithms(config(), 'worker', [])).rejects.toMatchObject({ code: 'ARTIFACT_SIGNATURE_INVALID', message: expect.stringMatching(/does not verify/) as unknown });
    expectOk(await arteria('algorithm', 'shadow', 'nap', '--off', '--to', deployment), /no shadow/);
    expect((await loadRoleAlgorithms(config(), 'worker', [])).shadows).toEqual([]);
  });

  it('ingest and worker processes run the released version from the store and name its digest; a shadow version is recorded and reported, never delivered; a version promoted or retired while they run takes effect without a restart; retiring removes it', { timeout: 180_000 }, async () => {
    const processes: RoleProcess[] = [];
    let mosquitto: ChildProcess | undefined;
    let device: ClusterDevice | undefined;
    try {
      const secretsFile = at('secrets.json');
      await writeFile(secretsFile, JSON.stringify({ platformSecret: PLATFORM_SECRET, tenants: { acme: TENANT_SECRET } }), { mode: 0o600 });
      const mqttPort = await freePort();
      await run(process.execPath, [CLI, 'broker', 'mosquitto', '--out', at('broker'), '--port', String(mqttPort), '--host', '127.0.0.1', '--user', process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'root'), '--secrets-file', secretsFile, '--device', 'acme/dev1', '--plaintext']);
      mosquitto = spawn('/usr/sbin/mosquitto', ['-c', at('broker', 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
      await waitForPort(mqttPort);
      const configFile = at('cluster.yaml');
      await writeFile(
        configFile,
        [
          `dataDir: ${at('cluster')}`,
          `mqtt: { url: "mqtt://127.0.0.1:${mqttPort}", keepaliveS: 5 }`,
          `s3: { endpoint: "${store.endpoint}", accessKeyId: S3RVER, secretAccessKey: S3RVER }`,
          'http: { port: 0 }',
          'worker: { concurrency: 1, leaseWaitMs: 200, threadsPerAlgorithm: 1 }',
          `algorithms: { bundled: false, fromStore: true, trustedKeyFiles: ["${at('keys', 'release.pub')}"], requireSignatures: true, storePollMs: 200 }`,
          `secrets: { file: "${secretsFile}" }`,
          '',
        ].join('\n'),
      );
      // A candidate that answers differently, shadowing every request of nap: recorded, never delivered.
      const candidate = await packVersion('2.2.0', true, (code) => code.replace('return { frames: frames.frameCount, napMs };', 'return { frames: frames.frameCount, napMs: napMs + 1 };'));
      expectOk(await arteria('algorithm', 'publish', candidate, '--key', at('keys', 'release.key'), '--to', deployment), /published nap@2\.2\.0 \(dev\)/);
      expectOk(await arteria('algorithm', 'shadow', 'nap@2.2.0', '--percent', '100', '--key', at('keys', 'release.key'), '--to', deployment), /shadows 100 %.*signed by/);
      processes.push(await RoleProcess.start(['ingest', '--config', configFile, '--instance-id', 'ingest-0'], 'ingest-0'));
      processes.push(await RoleProcess.start(['worker', '--config', configFile, '--instance-id', 'worker-0'], 'worker-0'));
      device = await ClusterDevice.connect(`mqtt://127.0.0.1:${mqttPort}`, TENANT_SECRET, 'acme', 'dev1');
      const requests = [await device.send(s3, BUCKET, 'nap@^2', 1, 1), await device.send(s3, BUCKET, 'nap@^2', 2, 2)];
      const results = await device.waitFor(requests.map((r) => r.id));
      for (const result of results) expect(result).toMatchObject({ status: 'ok', algorithm: { name: 'nap', version: '2.0.0', digest: contentDigest } });
      expect(results.map((r) => r.output)).toEqual([{ frames: 1, napMs: 50 }, { frames: 2, napMs: 100 }]);
      const cache = at('cluster', 'algorithm-cache', 'worker-worker-0');
      expect((await readdir(cache)).sort()).toEqual([`nap-2.0.0-${contentDigest.slice(7, 19)}`, expect.stringMatching(/^nap-2\.2\.0-/)]);

      // The shadow report: both runs recorded, every answer differs by the candidate's change.
      const reportFile = at('shadow-report.json');
      const report = await until(async () => {
        const r = await arteria('algorithm', 'shadow-report', 'nap', '--out', reportFile, '--to', deployment);
        return r.stdout.startsWith('nap: 2 shadow runs') ? r.stdout : undefined;
      }, 'two shadow runs', 30_000);
      expect(report).toMatch(/agreement 0\.0 % \(0\/2\)/);
      expect(report).toMatch(/^delivered +2\.0\.0 +runs +2 +errors +0\.0 %/m);
      expect(report).toMatch(/^shadow +2\.2\.0 +runs +2 +errors +0\.0 %/m);
      const written = JSON.parse(await readFile(reportFile, 'utf8')) as { runs: number; delivered: { digests: string[] }; disagreements: { requestId: string; delivered: string; shadow: string }[] };
      expect(written.delivered.digests).toEqual([contentDigest]);
      expect(written.disagreements).toContainEqual({ requestId: requests[0]!.id, delivered: '{"frames":1,"napMs":50}', shadow: '{"frames":1,"napMs":51}' });
      // No device saw the shadow's answers.
      expect(device.results.filter((r) => r.algorithm?.version !== '2.0.0')).toEqual([]);

      // Promoted while ingest and worker run: within their poll both load it, and the next
      // request runs it, from the same processes (no restart).
      const pids = processes.map((p) => p.child.pid);
      const next = await packVersion('2.3.0', true, (code) => code.replace('return { frames: frames.frameCount, napMs };', 'return { frames: frames.frameCount, napMs: napMs + 2 };'));
      expectOk(await arteria('algorithm', 'publish', next, '--key', at('keys', 'release.key'), '--to', deployment), /published nap@2\.3\.0 \(dev\)/);
      for (let i = 0; i < 2; i += 1) expect(await arteria('algorithm', 'promote', 'nap@2.3.0', '--key', at('keys', 'release.key'), '--to', deployment)).toMatchObject({ code: EXIT.ok });
      const loads = async (version: string, wanted: boolean): Promise<void> => {
        for (const p of processes) await until(async () => ((await p.status<{ algorithms: string[] }>()).algorithms.includes(`nap@${version}`) === wanted ? true : undefined), `${p.name} ${wanted ? 'loads' : 'drops'} nap@${version}`, 30_000);
      };
      await loads('2.3.0', true);
      const promoted = await device.send(s3, BUCKET, 'nap@^2', 3, 3);
      const [afterPromotion] = await device.waitFor([promoted.id]);
      expect(afterPromotion).toMatchObject({ status: 'ok', algorithm: { name: 'nap', version: '2.3.0' }, output: { frames: 3, napMs: 152 } });
      // Retired while running: requests resolve to the released version below it again.
      expect(await arteria('algorithm', 'retire', 'nap@2.3.0', '--key', at('keys', 'release.key'), '--to', deployment)).toMatchObject({ code: EXIT.ok });
      await loads('2.3.0', false);
      const retired = await device.send(s3, BUCKET, 'nap@^2', 4, 4);
      expect((await device.waitFor([retired.id]))[0]).toMatchObject({ status: 'ok', algorithm: { version: '2.0.0', digest: contentDigest } });
      expect(processes.map((p) => p.child.pid)).toEqual(pids);
      await Promise.all(processes.map((p) => p.stop()));

      // Shadow off and the version retired: the next start loads neither and prunes their cached folders.
      expectOk(await arteria('algorithm', 'shadow', 'nap', '--off', '--to', deployment), /no shadow/);
      expect(await arteria('algorithm', 'retire', 'nap@2.0.0', '--key', at('keys', 'release.key'), '--to', deployment)).toMatchObject({ code: EXIT.ok });
      const after = await loadRoleAlgorithms(parseClusterConfig({ dataDir: at('cluster'), instanceId: 'worker-0', s3: { endpoint: store.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, algorithms: { bundled: false, fromStore: true } }), 'worker', []);
      expect(after.registry.list()).toEqual([]);
      expect(await readdir(cache)).toEqual([]);
    } finally {
      await device?.close();
      await Promise.all(processes.map((p) => p.stop()));
      mosquitto?.kill('SIGKILL');
    }
  });
});
