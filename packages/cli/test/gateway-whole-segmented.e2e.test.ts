// Large complete files sent in segments (segmentWholeFilesOverBytes), against the embedded
// platform: the same result as the one-shot whole-file protocol, under the upload bandwidth
// cap; an algorithm without the incremental contract (NOT_INCREMENTAL) gets the file whole,
// de-identified as send() does; segments compressed (segmentEncoding br) get the same
// result; a gateway killed mid-run finishes it on the next start. The
// files are small: the tests set the threshold and the segment size low.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeRun, synthesizeXaRun } from '@arteria/dicom';
import { writeColorRun } from '@arteria/testing';
import { Gateway, type GatewayOptionsInput, type GatewayResult } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { finished, kill } from './support/child-process.js';
import { platformGatewayOptions } from './support/dicom-platform.js';
import { writeWholeOnlyAlgorithm } from './support/whole-only.js';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SECRET = 'whole-segmented-e2e-tenant-secret-0123';
const contrastDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));
const ROWS = 64;
const FRAMES = 90;
const FRAME_BYTES = ROWS * ROWS;
/** 16 frames a segment: a 90-frame run goes in 6 segments. */
const SEGMENTING = { segmentWholeFilesOverBytes: 100_000, wholeFileSegmentBytes: 16 * FRAME_BYTES } as const;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const synth = (seed: number): Uint8Array =>
  synthesizeXaRun({ seed, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8, contrast: { startFrame: 40, peakFrame: 60, endFrame: 80 }, patient: { name: 'Doe^Jane', id: 'MRN-0042', birthDate: '19510704', sex: 'F' } }).bytes;

describe('large complete files sent in segments, gateway to embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let reference: Gateway;
  const children: ChildProcess[] = [];
  const options = (device: string, overrides: Partial<GatewayOptionsInput> = {}): GatewayOptionsInput => ({
    ...platformGatewayOptions(platform, SECRET, device, path.join(dir, `${device}.db`)),
    deidentification: { enabled: false },
    ...overrides,
  });
  const outboxRows = (outbox: string): { kind: string; state: string; segments: number }[] => {
    const db = new Database(outbox, { readonly: true });
    try {
      return db.prepare('SELECT kind, state, (SELECT COUNT(*) FROM run_segments s WHERE s.entry_id = o.id) AS segments FROM outbox o ORDER BY seq').all() as { kind: string; state: string; segments: number }[];
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-whole-segmented-e2e-'));
    const wholeOnly = path.join(dir, 'whole-only');
    await writeWholeOnlyAlgorithm(wholeOnly);
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET }, algorithmDirs: [contrastDir, wholeOnly] });
    // The default threshold (32 MiB): these files go whole, by the one-shot protocol.
    reference = new Gateway(options('reference'), { logger: quiet });
    await reference.start();
  }, 60_000);
  afterAll(async () => {
    for (const child of children) await kill(child);
    await reference.close();
    await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a file over the threshold goes in segments under the bandwidth cap and gets the whole-file result, once when sent twice at once', async () => {
    const file = path.join(dir, 'large.dcm');
    const bytes = synth(21);
    await writeFile(file, bytes);
    const whole = await reference.send(file);
    expect(whole.status).toBe('ok');
    expect((await platform.ledger.get(whole.requestId))?.state === 'completed').toBe(true);

    const rate = 128 * 1024;
    // Segments go as they are: under a cap this low `auto` would compress them, and the bound
    // below counts the file's own bytes (compressed segments are the next test's).
    const gateway = new Gateway(options('segmenting', { ...SEGMENTING, uploadBandwidthBytesPerSecond: rate, segmentEncoding: 'none' }), { logger: quiet });
    await gateway.start();
    try {
      const started = performance.now();
      // The same file sent twice at once is one run.
      const [result, twice] = await Promise.all([gateway.send(file), gateway.send(file)]);
      const elapsed = performance.now() - started;
      expect(twice.requestId).toBe(result.requestId);
      expect(result.status, JSON.stringify(result.error)).toBe('ok');
      expect(result.output).toEqual(whole.output);
      expect(result.requestId).not.toBe(whole.requestId);
      const ledger = await platform.ledger.get(result.requestId);
      expect(ledger?.state === 'completed' && ledger.request?.inputs[0]?.uri.endsWith('/header')).toBe(true);
      expect(outboxRows(path.join(dir, 'segmenting.db'))).toEqual([{ kind: 'segmented', state: 'done', segments: 6 }]);
      // The cap lets its first second's worth go at once; the rest waits for it, segments included.
      expect(elapsed).toBeGreaterThanOrEqual(((bytes.length - rate) / rate) * 1000 * 0.9);
    } finally {
      await gateway.close();
    }
  }, 120_000);

  it('segments compressed (segmentEncoding br) get the whole-file result from fewer bytes on the link', async () => {
    const file = path.join(dir, 'compressed.dcm');
    await writeFile(file, synth(25));
    const whole = await reference.send(file);
    const outbox = path.join(dir, 'compressing.db');
    const gateway = new Gateway(options('compressing', { ...SEGMENTING, segmentEncoding: 'br' }), { logger: quiet });
    await gateway.start();
    try {
      const result = await gateway.send(file);
      expect(result.status, JSON.stringify(result.error)).toBe('ok');
      expect(result.output).toEqual(whole.output);
      const db = new Database(outbox, { readonly: true });
      const stored = db.prepare('SELECT size, encoding FROM run_segments ORDER BY idx').all() as { size: number; encoding: string | null }[];
      db.close();
      expect(stored.map((s) => s.encoding)).toEqual(Array(6).fill('br'));
      expect(stored.reduce((n, s) => n + s.size, 0)).toBeLessThan(FRAMES * FRAME_BYTES);
    } finally {
      await gateway.close();
    }
  }, 120_000);

  it('a color capture over the threshold goes in segments too (de-identified), and gets the result of the run it shows', async () => {
    // A True Color capture of the lab's monitor showing the run: gray pixels (R = G = B), whose luminance is the run.
    const gray = synth(27);
    const { frames } = await decodeRun(gray);
    const file = path.join(dir, 'capture.dcm');
    await writeFile(file, writeColorRun({ rows: ROWS, columns: ROWS, frames: FRAMES, rgb: (f, p) => { const v = frames.pixels[f * FRAME_BYTES + p]!; return [v, v, v]; } }));
    const grayFile = path.join(dir, 'capture-gray.dcm');
    await writeFile(grayFile, gray);
    const whole = await reference.send(grayFile);
    const outbox = path.join(dir, 'capturing.db');
    const gateway = new Gateway(options('capturing', { ...SEGMENTING, deidentification: { enabled: true } }), { logger: quiet });
    await gateway.start();
    try {
      const result = await gateway.send(file);
      expect(result.status, JSON.stringify(result.error)).toBe('ok');
      expect(result.output).toEqual(whole.output);
      // Three samples a frame: 5 frames a segment of 16 gray frames' bytes, 18 segments.
      expect(outboxRows(outbox)).toEqual([{ kind: 'segmented', state: 'done', segments: 18 }]);
    } finally {
      await gateway.close();
    }
  }, 120_000);

  it('an algorithm without the incremental contract gets the file whole (de-identified), once asked; later files go whole at once', async () => {
    const first = path.join(dir, 'whole-only-1.dcm');
    const second = path.join(dir, 'whole-only-2.dcm');
    await writeFile(first, synth(22));
    await writeFile(second, synth(23));
    const expected = await reference.send(first, { algorithm: 'contrast-injection@^1' });
    const logged: string[] = [];
    const outbox = path.join(dir, 'fallback.db');
    const gateway = new Gateway(options('fallback', { ...SEGMENTING, deidentification: { enabled: true } }), { logger: { ...quiet, info: (message) => logged.push(message) } });
    await gateway.start();
    try {
      const result = await gateway.send(first, { algorithm: 'whole-only@^1' });
      expect(result.status, JSON.stringify(result.error)).toBe('ok');
      expect(result.output).toEqual(expected.output);
      const ledger = await platform.ledger.get(result.requestId);
      // The whole file, de-identified: its UIDs are not the original's, and it is a .dcm object, not a header.
      expect(ledger?.state === 'completed' && ledger.request?.inputs[0]?.uri.endsWith('.dcm')).toBe(true);
      const original = await platform.ledger.get(expected.requestId);
      expect(ledger?.state === 'completed' && original?.state === 'completed' && ledger.request?.instanceUid !== original.request?.instanceUid).toBe(true);
      expect(logged.filter((m) => m.includes('NOT_INCREMENTAL'))).toHaveLength(1);
      expect(outboxRows(outbox)).toEqual([{ kind: 'file', state: 'done', segments: 0 }]);

      const again = await gateway.send(second, { algorithm: 'whole-only@^1' });
      expect(again.status).toBe('ok');
      expect(logged.filter((m) => m.includes('NOT_INCREMENTAL'))).toHaveLength(1);
      expect(outboxRows(outbox)).toEqual([{ kind: 'file', state: 'done', segments: 0 }, { kind: 'file', state: 'done', segments: 0 }]);
      // Only de-identified copies were spooled, and they are gone once answered.
      expect(await readdir(path.join(dir, 'fallback.db.spool')).catch(() => [])).toEqual([]);
    } finally {
      await gateway.close();
    }
  }, 120_000);

  it.each(['none', 'br'] as const)('a gateway killed mid-run and started again on its outbox finishes it: each segment announced once, one result (segments encoded: %s)', async (segmentEncoding) => {
    const file = path.join(dir, `restart-${segmentEncoding}.dcm`);
    await writeFile(file, synth(24));
    const expected = await reference.send(file);
    const outbox = path.join(dir, `restart-lab-${segmentEncoding}.db`);
    const config = path.join(dir, `restart-${segmentEncoding}.json`);
    // The first run at 4 KiB/s: its first segment goes at once (the cap's first second, then
    // debt), each later one 16 s after the one before (these frames hardly compress), so that
    // the kill lands mid-run even on a busy machine, where polling the outbox and the kill
    // itself have lagged by 20 s (at 16 KiB/s, 4 s a segment, all six were announced before
    // the kill once). The second run at 1 MiB/s, not to wait on the cap again.
    const writeConfig = (bytesPerSecond: number): Promise<void> =>
      writeFile(config, JSON.stringify({ gateway: { ...options(`restart-lab-${segmentEncoding}`, { ...SEGMENTING, uploadBandwidthBytesPerSecond: bytesPerSecond, segmentEncoding }), resendIntervalMs: 1_000 } }));
    await writeConfig(4 * 1024);
    const args = [CLI, 'gateway', 'send', file, '--config', config, '--json'];
    const firstRun = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(firstRun);
    let firstOutput = '';
    firstRun.stdout?.on('data', (chunk: Buffer) => (firstOutput += chunk.toString()));
    firstRun.stderr?.on('data', (chunk: Buffer) => (firstOutput += chunk.toString()));
    const announced = (): number => {
      let db: Database.Database | undefined;
      try {
        db = new Database(outbox, { readonly: true, fileMustExist: true });
        return (db.prepare('SELECT COUNT(*) AS n FROM run_segments WHERE announced_at IS NOT NULL').get() as { n: number }).n;
      } catch {
        return 0; // not created yet
      } finally {
        db?.close();
      }
    };
    await vi.waitFor(() => expect(announced(), firstOutput).toBeGreaterThanOrEqual(1), { timeout: 60_000, interval: 100 });
    await kill(firstRun);
    expect(announced()).toBeLessThan(6);
    await writeConfig(1024 * 1024);
    const secondRun = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(secondRun);
    const { stdout, stderr, code } = await finished(secondRun);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    const result = JSON.parse(stdout.slice(stdout.indexOf('{\n'))) as GatewayResult;
    expect(result.status).toBe('ok');
    expect(result.output).toEqual(expected.output);
    const db = new Database(outbox, { readonly: true });
    const segments = db.prepare('SELECT frame_count AS frameCount, announcements, encoding FROM run_segments ORDER BY idx').all() as { frameCount: number; announcements: number; encoding: string | null }[];
    db.close();
    expect(outboxRows(outbox)).toEqual([{ kind: 'segmented', state: 'done', segments: 6 }]);
    expect(segments.reduce((n, s) => n + s.frameCount, 0)).toBe(FRAMES);
    expect(segments.every((s) => s.announcements === 1)).toBe(true);
    expect(segments.every((s) => s.encoding === (segmentEncoding === 'br' ? 'br' : null))).toBe(true);
  }, 120_000);
});
