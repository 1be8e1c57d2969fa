import { createHash } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, synthesizeXaRun } from '@arteria/dicom';
import { writeSingleFrameSeries } from '@arteria/testing';
import { Gateway } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { createS3Client, parseS3Uri } from '@arteria/engine-s3';
import { platformGatewayOptions } from './support/dicom-platform.js';
import { STAGES, deviceToken } from '@arteria/protocol';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SECRET = 'e2e-tenant-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

describe('end to end on the embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-e2e-'));
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET }, algorithmDirs: [algorithmDir] });
  });
  afterAll(async () => {
    await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  function gateway(device: string): Gateway {
    return new Gateway({
      ...platformGatewayOptions(platform, SECRET, device, path.join(dir, `${device}.db`)),
      // Follows the exact bytes end to end; de-identification has its own end-to-end test.
      deidentification: { enabled: false },
    });
  }

  it('a generated XA run goes gateway -> broker -> ingest -> queue -> worker -> result', async () => {
    const synthetic = synthesizeXaRun({ seed: 42, rows: 128, columns: 128, frames: 30, frameRateHz: 15, bitsStored: 12, contrast: { startFrame: 8, peakFrame: 15, endFrame: 26 } });
    const file = path.join(dir, 'run.dcm');
    await writeFile(file, synthetic.bytes);
    const sha256 = createHash('sha256').update(await readFile(file)).digest('hex');

    const g = gateway('cath-lab-1');
    await g.start();
    try {
      const result = await g.send(file);
      expect(result.status).toBe('ok');
      // Provenance: exact version and the digest of the installed artifact.
      const installed = platform.registry.resolve('contrast-injection@^1');
      expect(result.algorithm).toEqual(installed.ref);
      expect(result.algorithm?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      // The algorithm's answer matches what was put into the run.
      const output = result.output as { contrastDetected: boolean; injection: { startFrame: number } | null };
      expect(output.contrastDetected).toBe(true);
      expect(Math.abs((output.injection?.startFrame ?? -99) - 8)).toBeLessThanOrEqual(2);
      // Every stage is stamped, in order.
      const stamps = STAGES.map((stage) => result.timings[stage]);
      expect(stamps.every((t) => typeof t === 'number')).toBe(true);
      for (let i = 1; i < stamps.length; i += 1) expect(stamps[i]).toBeGreaterThanOrEqual(stamps[i - 1] ?? Infinity);
      // Checksum: what the request declared is what was sent and what is stored.
      const entry = await platform.ledger.get(result.requestId);
      const input = entry?.state === 'completed' ? entry.request?.inputs[0] : undefined;
      expect(input?.sha256).toBe(sha256);
      expect(input?.size).toBe(synthetic.bytes.byteLength);
      const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
      const { bucket, key } = parseS3Uri(input?.uri ?? '');
      const stored = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToByteArray();
      s3.destroy();
      expect(createHash('sha256').update(stored ?? new Uint8Array()).digest('hex')).toBe(sha256);
    } finally {
      await g.close();
    }
  });

  it('a run without contrast says so', async () => {
    const g = gateway('cath-lab-2');
    await g.start();
    try {
      const synthetic = synthesizeXaRun({ seed: 5, rows: 64, columns: 64, frames: 20, bitsStored: 8, contrast: null });
      const result = await g.send({ bytes: synthetic.bytes, name: 'plain.dcm' });
      expect(result.status).toBe('ok');
      expect((result.output as { contrastDetected: boolean }).contrastDetected).toBe(false);
    } finally {
      await g.close();
    }
  });

  it('`arteria gateway send` prints the result, and refuses a non-DICOM file with INVALID_DICOM', async () => {
    const dataDir = path.join(dir, 'cli');
    const good = path.join(dir, 'good.dcm');
    const bad = path.join(dir, 'notes.txt');
    await writeFile(good, synthesizeXaRun({ seed: 9, rows: 64, columns: 64, frames: 16, bitsStored: 8 }).bytes);
    await writeFile(bad, 'this is not a DICOM file\n');
    const common = ['gateway', 'send', '--data-dir', dataDir, '--tenant', 'acme', '--token', deviceToken(SECRET, { tenant: 'acme', device: 'cli' }), '--mqtt-url', platform.mqttUrl, '--s3-endpoint', platform.s3Endpoint];
    const ok = await run(process.execPath, [CLI, ...common, good]);
    expect(ok.stdout).toMatch(/contrast-injection@1\.0\.0 ok: contrast injection frames/);
    expect(ok.stdout).not.toMatch(/not run again/);
    // Sent again a moment later: the answer already given, and the line says so.
    const again = await run(process.execPath, [CLI, ...common, good]);
    expect(again.stdout).toMatch(/^good\.dcm <- contrast-injection@1\.0\.0 ok: contrast injection frames .* \[answered at \d{4}-\d\d-\d\dT[\d:.]+Z, before this send; not run again\]$/m);
    const refused = await run(process.execPath, [CLI, ...common, bad]).catch((err: { code: number; stderr: string }) => err);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toMatch(/INVALID_DICOM/);
  }, 120_000); // three CLI processes, each starting a gateway from cold

  it('`arteria gateway send <folder>` sends a media export, subfolders included: a run exported frame by frame goes as the one run it is', async () => {
    // A contrast run's 24 frames, each its own single-frame file, as some systems export runs,
    // laid out as DICOM media are (DICOM/{patient}/{series}/IM...), with another run beside it
    // and a viewer's files on the same disc.
    const { frames } = decodeFrames(synthesizeXaRun({ seed: 11, rows: 64, columns: 64, frames: 24, bitsStored: 8, contrast: { startFrame: 6, peakFrame: 12, endFrame: 20 } }).bytes);
    const folder = path.join(dir, 'exported');
    const seriesFolder = path.join(folder, 'DICOM', 'PAT1', 'SER1');
    await mkdir(seriesFolder, { recursive: true });
    await mkdir(path.join(folder, 'DICOM', 'PAT1', 'SER2'));
    await mkdir(path.join(folder, 'VIEWER'));
    const size = 64 * 64;
    const series = '1.2.826.0.1.3680043.8.1055.1.77.1';
    await writeSingleFrameSeries(seriesFolder, { studyInstanceUid: '1.2.826.0.1.3680043.8.1055.1.77', seriesInstanceUid: series, count: 24, rows: 64, columns: 64, frame: (i) => Uint8Array.from(frames.pixels.subarray(i * size, (i + 1) * size)), name: (i) => `IM${String(i).padStart(6, '0')}` });
    await writeFile(path.join(folder, 'DICOM', 'PAT1', 'SER2', 'IM000000'), synthesizeXaRun({ seed: 13, rows: 64, columns: 64, frames: 16, bitsStored: 8 }).bytes);
    await writeFile(path.join(folder, 'VIEWER', 'README.TXT'), 'the viewer on the disc: not a run');
    await writeFile(path.join(folder, 'DICOMDIR'), 'the export\'s index: not a run');
    const dataDir = path.join(dir, 'cli-series');
    const { stdout, stderr } = await run(process.execPath, [CLI, 'gateway', 'send', '--data-dir', dataDir, '--tenant', 'acme', '--token', deviceToken(SECRET, { tenant: 'acme', device: 'cli-series' }), '--device', 'cli-series', '--mqtt-url', platform.mqttUrl, '--s3-endpoint', platform.s3Endpoint, folder]);
    expect(stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^series ${series.replaceAll('.', '\\.')} \\(24 single frames\\).*contrast-injection@1\\.0\\.0 ok: contrast injection frames`)),
      expect.stringMatching(/^DICOM\/PAT1\/SER2\/IM000000 <- contrast-injection@1\.0\.0 ok/),
    ]);
    expect(stderr).toMatch(/skipped 1 file that is neither named \.dcm nor DICOM Part 10/);
    // The run made of the frames is removed once answered; the frames are the user's.
    expect(await readdir(path.join(dataDir, 'gateway', 'cli-series.db.series'))).toEqual([]);
    expect(await readdir(seriesFolder)).toHaveLength(24);
  }, 90_000);

  it('`arteria gateway run --watch` prints each answer under the name of the file it came from', async () => {
    const folder = path.join(dir, 'watched');
    await mkdir(folder);
    const child = spawn(process.execPath, [CLI, 'gateway', 'run', '--watch', folder, '--data-dir', path.join(dir, 'cli-watch'), '--tenant', 'acme', '--token', deviceToken(SECRET, { tenant: 'acme', device: 'cli-watch' }), '--device', 'cli-watch', '--mqtt-url', platform.mqttUrl, '--s3-endpoint', platform.s3Endpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // De-identified on its way (the default): the answer must still name this file, not the copy that went up.
      await writeFile(path.join(folder, 'cath-lab-run.dcm'), synthesizeXaRun({ seed: 12, rows: 64, columns: 64, frames: 16, bitsStored: 8 }).bytes);
      await expect.poll(() => stdout, { timeout: 60_000, interval: 100 }).toMatch(/^cath-lab-run\.dcm <- contrast-injection@1\.0\.0 ok/m);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});

describe('arteria up', () => {
  it('starts everything, shows results flowing back from the simulated fleet, and stops cleanly', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'arteria-up-'));
    try {
      const { stdout } = await run(
        process.execPath,
        // One run a second per device: a pace the embedded platform keeps up with on a busy
        // 2-core machine, so results come back within the run.
        [CLI, 'up', '--data-dir', dataDir, '--mqtt-port', '0', '--s3-port', '0', '--http-port', '0', '--devices', '3', '--run-frames', '12', '--run-size', '64', '--run-interval-s', '1', '--idle-s', '0.2', '--procedure-s', '30', '--duration-s', '10'],
        { timeout: 60_000 },
      );
      expect(stdout).toMatch(/Arteria is up/);
      expect(stdout).toMatch(/sim-00\d <- (contrast-injection@1\.0\.0|balloon-inflation@3\.2\.0) ok:/);
      const summary = /Sent (\d+) runs, received (\d+) results \(ok (\d+)/.exec(stdout);
      expect(Number(summary?.[3])).toBeGreaterThan(0);
      // Every algorithm the fleet asks for by default is installed and admitted.
      expect(stdout).not.toMatch(/ rejected [A-Z_]+:/);
      expect(stdout).toMatch(/e2e p50 [\d.]+ ms p99/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
    // A 10 s fleet run plus start and stop on a busy machine.
  }, 90_000);
});
