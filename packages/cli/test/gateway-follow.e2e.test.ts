// Runs sent while they are acquired, from the gateway's side: a file still being written
// (`sendFollow`, `arteria gateway send --follow`) and a frame source, against the embedded
// platform with the algorithm's incremental contract; a gateway killed mid-stream and
// restarted on the same outbox; and the typed refusals.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encapsulateFrames, synthesizeXaRun } from '@arteria/dicom';
import { Gateway, type GatewayOptionsInput, type GatewayResult } from '@arteria/gateway';
import { DicomIntake } from '@arteria/gateway-site';
import { EmbeddedPlatform } from '@arteria/platform';
import type { PartialResultV1 } from '@arteria/protocol';
import { finished, kill } from './support/child-process.js';
import { platformGatewayOptions } from './support/dicom-platform.js';
import { writeWholeOnlyAlgorithm } from './support/whole-only.js';

const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SECRET = 'follow-e2e-tenant-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));
const ROWS = 64;
const FRAMES = 90;
const FRAME_BYTES = ROWS * ROWS;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const synth = (seed: number, frames = FRAMES): Uint8Array =>
  synthesizeXaRun({ seed, rows: ROWS, columns: ROWS, frames, bitsStored: 8, ...(frames === FRAMES ? { contrast: { startFrame: 40, peakFrame: 60, endFrame: 80 } } : {}) }).bytes;
/** The synthesizer writes the pixels last: the header is everything before them. */
const split = (bytes: Uint8Array, frames = FRAMES): { header: Uint8Array; pixels: Uint8Array } => ({
  header: bytes.subarray(0, bytes.length - frames * FRAME_BYTES),
  pixels: bytes.subarray(bytes.length - frames * FRAME_BYTES),
});

/** Writes the header, then `perStep` frames every `everyMs`, from frame `from` (the file is the run being acquired). */
async function writeSlowly(file: string, bytes: Uint8Array, options: { from?: number; to?: number; perStep?: number; everyMs?: number } = {}): Promise<void> {
  const { header, pixels } = split(bytes);
  const { from = 0, to = FRAMES, perStep = 3, everyMs = 30 } = options;
  if (from === 0) await writeFile(file, header);
  for (let frame = from; frame < to; frame += perStep) {
    await appendFile(file, pixels.subarray(frame * FRAME_BYTES, Math.min(to, frame + perStep) * FRAME_BYTES));
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

describe('runs sent while they are acquired, gateway to embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let gateway: Gateway;
  const options = (device: string, overrides: Partial<GatewayOptionsInput> = {}): GatewayOptionsInput => ({
    ...platformGatewayOptions(platform, SECRET, device, path.join(dir, `${device}.db`)),
    deidentification: { enabled: false },
    ...overrides,
  });
  /**
   * A gateway with its DICOM port streaming C-STOREs while they arrive, reached through a relay
   * that holds each C-STORE after its first 4 MiB until released, and the results it delivers.
   */
  const streamingPort = async (device: string, incoming: string, overrides: Partial<GatewayOptionsInput>) => {
    const streaming = new Gateway(options(device, overrides), { logger: quiet });
    const intake = new DicomIntake(streaming, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder: path.join(dir, incoming), stableMs: 600_000, streamWhileArriving: true }, quiet);
    const results: GatewayResult[] = [];
    streaming.on('result', ({ result }) => results.push(result));
    await streaming.start();
    await intake.start();
    const relay = await holdingRelay(intake.receiver.port, 4 * 1024 * 1024);
    const close = async (): Promise<void> => {
      relay.release();
      await relay.close();
      await intake.close();
      await streaming.close();
    };
    return { streaming, intake, results, relay, close };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-follow-e2e-'));
    const wholeOnly = path.join(dir, 'whole-only');
    await writeWholeOnlyAlgorithm(wholeOnly);
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET }, algorithmDirs: [algorithmDir, wholeOnly] });
    gateway = new Gateway(options('cath-lab-1'), { logger: quiet });
    await gateway.start();
  }, 60_000);
  /** Gateway processes a test started: one left behind by a failed attempt must not outlive the suite. */
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) await kill(child);
    await gateway.close();
    await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a file written while it is sent gets the whole-file result, after a partial result', async () => {
    const bytes = synth(7);
    const whole = path.join(dir, 'whole.dcm');
    await writeFile(whole, bytes);
    const reference = await gateway.send(whole);
    expect(reference.status).toBe('ok');

    const growing = path.join(dir, 'growing.dcm');
    await writeFile(growing, new Uint8Array(0));
    const partials: PartialResultV1[] = [];
    const sent = gateway.sendFollow(growing, { framesPerSegment: 8, onPartial: (p) => partials.push(p) });
    await writeSlowly(growing, synth(7));
    const result = await sent;
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.output).toEqual(reference.output);
    expect(result.requestId).not.toBe(reference.requestId);
    expect(partials.map((p) => [p.seq, p.event.type])).toEqual([[0, 'contrast-arrival']]);
    expect(partials[0]!.framesSeen).toBeLessThan(FRAMES);
  }, 120_000);

  it('a frame source: frames pushed as they come, then the end, give the whole-file result', async () => {
    const bytes = synth(8);
    const { header, pixels } = split(bytes);
    const reference = await gateway.send({ bytes, name: 'frames-whole.dcm' });
    const source = await gateway.openFrameSource(header, { framesPerSegment: 10 });
    expect(source.frameBytes).toBe(FRAME_BYTES);
    for (let frame = 0; frame < FRAMES; frame += 5) await source.push(pixels.subarray(frame * FRAME_BYTES, (frame + 5) * FRAME_BYTES));
    await expect(source.push(pixels.subarray(0, 10))).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await source.end();
    const result = await source.result;
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    expect(result.requestId).toBe(source.requestId);
    expect(result.output).toEqual(reference.output);
  }, 120_000);

  // storescu cannot pause mid-transfer, and a C-STORE that completes before the port has
  // read its header is, by design, sent whole. A relay between storescu and the port holds
  // the association's bytes after the first 4 MB (the header and a few frames) until the
  // port has taken the instance in as a segmented run, as a slow link would.
  it('a C-STORE streamed while it arrives (de-identified header) gets the whole-file result from the platform', async () => {
    const bytes = synthesizeXaRun({ seed: 10, rows: 512, columns: 512, frames: FRAMES, bitsStored: 8, contrast: { startFrame: 40, peakFrame: 60, endFrame: 80 }, patient: { name: 'Doe^Jane', id: 'MRN-0042', birthDate: '19510704', sex: 'F' } }).bytes;
    const file = path.join(dir, 'stored.dcm');
    await writeFile(file, bytes);
    const reference = await gateway.send(file);
    const { streaming, intake, results, relay, close } = await streamingPort('cath-lab-dicom', 'incoming', { deidentification: { enabled: true } });
    try {
      const stored = promisify(execFile)('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(relay.port), file]);
      await relay.holding;
      await vi.waitFor(() => expect(streaming.stats().pending).toBe(1), { timeout: 30_000, interval: 20 });
      relay.release();
      await stored;
      await vi.waitFor(() => expect(results).toHaveLength(1), { timeout: 60_000, interval: 50 });
      expect(results[0]?.status, JSON.stringify(results[0]?.error)).toBe('ok');
      expect(results[0]?.output).toEqual(reference.output);
      const request = await platform.ledger.get(results[0]?.requestId ?? '');
      expect(request?.state === 'completed' && request.request?.inputs[0]?.uri.endsWith('/header'), JSON.stringify({ state: request?.state, inputs: request?.state === 'completed' ? request.request?.inputs : undefined })).toBe(true);
      await intake.idle();
    } finally {
      await close();
    }
  }, 120_000);

  // The port streams by default; the platform runs the routed algorithm whole only and
  // answers its run NOT_INCREMENTAL. That is not the study's answer: the stored file goes
  // whole, once, and its result is the one the port's caller gets.
  it('a C-STORE streamed to an algorithm without the incremental contract arrives once, whole, and is answered once', async () => {
    const bytes = synthesizeXaRun({ seed: 11, rows: 512, columns: 512, frames: FRAMES, bitsStored: 8, contrast: { startFrame: 40, peakFrame: 60, endFrame: 80 } }).bytes;
    const file = path.join(dir, 'stored-whole-only.dcm');
    await writeFile(file, bytes);
    const reference = await gateway.send(file);
    const device = 'cath-lab-whole-only';
    const { streaming, intake, results, relay, close } = await streamingPort(device, 'incoming-whole-only', { algorithm: 'whole-only@^1' });
    const states: string[] = [];
    streaming.on('entry', ({ state }) => states.push(state));
    try {
      const stored = promisify(execFile)('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(relay.port), file]);
      await relay.holding;
      // Streamed first: the port does not know yet that the algorithm cannot take it so.
      await vi.waitFor(() => expect(states).toContain('pending'), { timeout: 30_000, interval: 20 });
      relay.release();
      await stored;
      await vi.waitFor(() => expect(results).toHaveLength(1), { timeout: 60_000, interval: 50 });
      await intake.idle();
      expect(results).toHaveLength(1);
      expect(results[0]?.status, JSON.stringify(results[0]?.error)).toBe('ok');
      expect(results[0]?.output).toEqual(reference.output);
      const mine = (await platform.ledger.recent(50)).filter((e) => e.device === device);
      // The streamed run, refused, and the whole file, answered: nothing else.
      expect(mine.map((e) => [e.state, e.result?.error?.code, e.request?.inputs[0]?.uri.endsWith('/header')]).sort()).toEqual([
        ['completed', undefined, false],
        ['completed', 'NOT_INCREMENTAL', true],
      ]);
      expect(mine.find((e) => e.result?.error === undefined)?.requestId).toBe(results[0]?.requestId);
    } finally {
      await close();
    }
  }, 120_000);

  it('refuses what cannot be sent segmented with a typed error', async () => {
    const single = path.join(dir, 'single.dcm');
    await writeFile(single, synthesizeXaRun({ seed: 3, rows: ROWS, columns: ROWS, frames: 1, bitsStored: 8 }).bytes);
    await expect(gateway.sendFollow(single)).rejects.toMatchObject({ code: 'UNSUPPORTED_DICOM' });

    const native = synth(4, 4);
    const frames = [0, 1, 2, 3].map((i) => split(native, 4).pixels.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES));
    const compressed = path.join(dir, 'rle.dcm');
    await writeFile(compressed, encapsulateFrames(native, '1.2.840.10008.1.2.5', frames));
    await expect(gateway.sendFollow(compressed)).rejects.toMatchObject({ code: 'UNSUPPORTED_TRANSFER_SYNTAX' });

    const truncated = path.join(dir, 'truncated.dcm');
    const cut = synth(5);
    await writeFile(truncated, cut.subarray(0, cut.length - 30 * FRAME_BYTES - 100));
    await expect(gateway.sendFollow(truncated, { stableAfterMs: 1_500 })).rejects.toMatchObject({ code: 'RUN_INCOMPLETE' });
    expect(gateway.stats().pending).toBe(0);
  }, 120_000);

  // The kill may land after the store took a segment and before the gateway recorded it:
  // the restarted gateway uploads that segment again, and the store's copy counts (the
  // deterministic cases are in the gateway's segmented-resume.test.ts).
  it('a gateway killed mid-stream and started again on its outbox finishes the run: each segment announced once, one result', async () => {
    const outbox = path.join(dir, 'restart.db');
    const file = path.join(dir, 'restart.dcm');
    const bytes = synth(9);
    await writeFile(file, new Uint8Array(0));
    // The run ends by its last frame only: the file stops growing at frame 60 until the second
    // gateway runs, and with the default 10 s a busy machine could let the first give it up.
    const args = [CLI, 'gateway', 'send', '--follow', file, '--frames-per-segment', '6', '--stable-ms', '600000', '--json', '--mqtt-url', platform.mqttUrl, '--s3-endpoint', platform.s3Endpoint,
      '--tenant', 'acme', '--device', 'restart-lab', '--token', platformGatewayOptions(platform, SECRET, 'restart-lab', outbox).token, '--outbox', outbox];
    const first = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(first);
    const writing = writeSlowly(file, bytes, { to: 60, everyMs: 60 });
    const announced = (): number => {
      const db = new Database(outbox, { readonly: true, fileMustExist: true });
      try {
        return (db.prepare('SELECT COUNT(*) AS n FROM run_segments WHERE announced_at IS NOT NULL').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    await vi.waitFor(() => expect(announced()).toBeGreaterThanOrEqual(3), { timeout: 60_000, interval: 100 });
    await kill(first);
    await writing;
    const second = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(second);
    await writeSlowly(file, bytes, { from: 60, everyMs: 30 });
    const { stdout, stderr, code } = await finished(second);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    const result = JSON.parse(stdout.slice(stdout.indexOf('{\n'))) as GatewayResult;
    expect(result.status).toBe('ok');
    const reference = await gateway.send({ bytes, name: 'restart-whole.dcm' });
    expect(result.output).toEqual(reference.output);
    const db = new Database(outbox, { readonly: true });
    const segments = db.prepare('SELECT idx, first_frame AS firstFrame, frame_count AS frameCount, announcements FROM run_segments ORDER BY idx').all() as { idx: number; firstFrame: number; frameCount: number; announcements: number }[];
    const entries = db.prepare("SELECT state FROM outbox WHERE kind = 'segmented'").all();
    db.close();
    expect(entries).toEqual([{ state: 'done' }]);
    expect(segments.map((s) => s.idx)).toEqual(segments.map((_, i) => i));
    expect(segments.reduce((n, s) => n + s.frameCount, 0)).toBe(FRAMES);
    expect(segments.every((s) => s.announcements === 1)).toBe(true);
    const ledger = await platform.ledger.get(result.requestId);
    expect(ledger?.state).toBe('completed');
  }, 120_000);
});

/** A TCP relay to `port` that passes the caller's first `holdAfter` bytes, then holds the rest until release(). */
async function holdingRelay(port: number, holdAfter: number): Promise<{ port: number; holding: Promise<void>; release(): void; close(): Promise<void> }> {
  let released = false;
  let startHolding = (): void => undefined;
  const holding = new Promise<void>((resolve) => (startHolding = resolve));
  const waiting: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let passed = 0;
    const held: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      if (released) return void upstream.write(chunk);
      const room = Math.max(0, holdAfter - passed);
      passed += Math.min(room, chunk.length);
      if (room > 0) upstream.write(chunk.subarray(0, room));
      if (chunk.length <= room) return;
      held.push(chunk.subarray(room));
      client.pause();
      startHolding();
      waiting.push(() => {
        for (const rest of held.splice(0)) upstream.write(rest);
        client.resume();
      });
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    holding,
    release() {
      released = true;
      for (const go of waiting.splice(0)) go();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
