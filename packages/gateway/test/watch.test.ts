import { mkdir, readFile, readdir, rename, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeFrames } from '@arteria/dicom';
import { FolderWatcher, Gateway, groupFolderRuns, seriesFolderName } from '@arteria/gateway';
import { writeSingleFrameSeries } from '@arteria/testing';
import { gatewayOptions, memoryLogger, objectBytes, smallRun, startServersWithResponder, type Responder, type Servers } from './helpers.js';

const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.7';
const ROWS = 16;
const COLUMNS = 12;
/** Frame `i` of a run: a ramp offset by 20 grey levels a frame, so that order shows. */
const frame = (i: number): Uint8Array => Uint8Array.from({ length: ROWS * COLUMNS }, (_, p) => (i * 20 + (p % 40)) & 0xff);

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

// Closes the responder, then the broker and store.
afterAll(async () => servers?.close());

describe('FolderWatcher', () => {
  it('sends new .dcm files and moves them to sent/ or failed/ with a report', async () => {
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-1'), { logger: memoryLogger() });
    await gateway.start();
    const folder = join(servers.directory, 'incoming');
    await mkdir(folder, { recursive: true });
    const answers: string[] = [];
    const watcher = new FolderWatcher(gateway, { folder, stableMs: 50, pollIntervalMs: 20, logger: memoryLogger(), onResult: ({ name, files, result }) => answers.push(`${name} ${files.join(',')} ${result.status}`) });
    await watcher.start();
    try {
      await writeFile(join(folder, 'run-a.dcm'), smallRun(201));
      await writeFile(join(folder, 'broken.dcm'), 'not a DICOM file');
      await writeFile(join(folder, 'readme.txt'), 'ignored: not a .dcm file');
      // As exports name them: no extension. A Part 10 file goes; anything else, and DICOMDIR, stays.
      await writeFile(join(folder, 'IM000001'), smallRun(204));
      await writeFile(join(folder, 'NOTES'), 'ignored: no extension, not DICOM');
      await writeFile(join(folder, 'DICOMDIR'), smallRun(205));

      await vi.waitFor(
        async () => {
          expect((await readdir(watcher.sentFolder)).sort()).toEqual(['IM000001', 'IM000001.result.json', 'run-a.dcm', 'run-a.dcm.result.json']);
          expect((await readdir(watcher.failedFolder)).sort()).toEqual(['broken.dcm', 'broken.dcm.error.json']);
        },
        { timeout: 10_000, interval: 25 },
      );
      await watcher.idle();

      const result = JSON.parse(await readFile(join(watcher.sentFolder, 'run-a.dcm.result.json'), 'utf8')) as { requestId: string; status: string };
      expect(result.status).toBe('ok');
      expect(responder.requestsOf('watch-1').map((s) => s.request.id)).toContain(result.requestId);
      expect(responder.requestsOf('watch-1')).toHaveLength(2);
      const error = JSON.parse(await readFile(join(watcher.failedFolder, 'broken.dcm.error.json'), 'utf8')) as { code: string; retryable: boolean };
      expect(error).toMatchObject({ code: 'INVALID_DICOM', retryable: false });
      expect((await readdir(folder)).sort()).toEqual(['DICOMDIR', 'NOTES', 'failed', 'readme.txt', 'sent']);
      // Answers under the file's own name, not the de-identified copy's; refusals are not answers.
      expect(answers.sort()).toEqual(['IM000001 IM000001 ok', 'run-a.dcm run-a.dcm ok']);
    } finally {
      await watcher.close();
    }
  });

  it('sends single frames of one series, exported one by one, as one run; the frames move together to sent/{series}/', async () => {
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-2'), { logger: memoryLogger() });
    await gateway.start();
    const folder = join(servers.directory, 'incoming-2');
    const staging = join(servers.directory, 'staging-2');
    await mkdir(folder, { recursive: true });
    await mkdir(staging, { recursive: true });
    const series = `${STUDY}.2`;
    const files = await writeSingleFrameSeries(staging, { studyInstanceUid: STUDY, seriesInstanceUid: series, count: 5, rows: ROWS, columns: COLUMNS, frame, name: (i) => `IM${String(4 - i).padStart(4, '0')}.dcm` });
    const logger = memoryLogger();
    const answers: string[] = [];
    const watcher = new FolderWatcher(gateway, { folder, stableMs: 300, pollIntervalMs: 20, logger, onResult: ({ name, files }) => answers.push(`${name}: ${files.length}`) });
    await watcher.start();
    try {
      await writeFile(join(folder, 'run-b.dcm'), smallRun(202));
      // The export takes a while: one frame every 100 ms, each alone already stable.
      for (const file of files) {
        await rename(file, join(folder, basename(file)));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await vi.waitFor(
        async () => expect((await readdir(watcher.sentFolder)).sort()).toEqual([series, `${series}.result.json`, 'run-b.dcm', 'run-b.dcm.result.json'].sort()),
        { timeout: 15_000, interval: 25 },
      );
      await watcher.idle();
      // One request for the series, one for the multi-frame run: no frame went on its own.
      const requests = responder.requestsOf('watch-2');
      expect(requests).toHaveLength(2);
      expect((await readdir(join(watcher.sentFolder, series))).sort()).toEqual(files.map((f) => basename(f)).sort());
      const report = JSON.parse(await readFile(join(watcher.sentFolder, `${series}.result.json`), 'utf8')) as { requestId: string; status: string };
      expect(report.status).toBe('ok');
      const seriesRequest = requests.find((r) => r.request.id === report.requestId);
      const { frames } = decodeFrames(await objectBytes(servers.s3, seriesRequest?.request.inputs[0]?.uri ?? ''));
      // In Instance Number order, though their names sort the other way.
      expect(frames.frameCount).toBe(5);
      for (let i = 0; i < 5; i++) expect(Buffer.from(frames.pixels.subarray(i * ROWS * COLUMNS, (i + 1) * ROWS * COLUMNS)).equals(Buffer.from(frame(i)))).toBe(true);
      expect(frames.frameTimeMs).toBeCloseTo(1000 / 15, 1);
      // Nothing stays behind: not the frames, not the run made of them.
      expect((await readdir(folder)).sort()).toEqual(['.series', 'failed', 'sent']);
      expect(await readdir(join(folder, '.series'))).toEqual([]);
      expect(answers.sort()).toEqual(['run-b.dcm: 1', `series ${series} (5 single frames): 5`]);
    } finally {
      await watcher.close();
    }
  });

  it('frames of a series that cannot make one run go one by one, each to failed/ with its reason', async () => {
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-3'), { logger: memoryLogger() });
    await gateway.start();
    const folder = join(servers.directory, 'incoming-3');
    await mkdir(folder, { recursive: true });
    const logger = memoryLogger();
    const watcher = new FolderWatcher(gateway, { folder, stableMs: 100, pollIntervalMs: 20, logger });
    const files = await writeSingleFrameSeries(folder, { studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.3`, count: 3, rows: ROWS, columns: COLUMNS, frame, sizes: (i) => (i === 1 ? [ROWS, COLUMNS + 2] : [ROWS, COLUMNS]) });
    await watcher.start();
    try {
      const names = files.map((f) => basename(f));
      await vi.waitFor(async () => expect((await readdir(watcher.failedFolder)).sort()).toEqual(names.flatMap((n) => [n, `${n}.error.json`]).sort()), { timeout: 15_000, interval: 25 });
      await watcher.idle();
      const error = JSON.parse(await readFile(join(watcher.failedFolder, `${names[0]}.error.json`), 'utf8')) as { code: string; message: string };
      expect(error.code).toBe('UNSUPPORTED_DICOM');
      expect(error.message).toMatch(/multi-frame/);
      expect(logger.lines.some((l) => l.level === 'warn' && /could not be made into one run/.test(l.message))).toBe(true);
      expect(responder.requestsOf('watch-3')).toEqual([]);
    } finally {
      await watcher.close();
    }
  });

  it('groups a folder into runs by header; a header never names a path', async () => {
    const folder = join(servers.directory, 'grouping');
    await mkdir(folder, { recursive: true });
    const a = await writeSingleFrameSeries(folder, { studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.4`, count: 2, rows: ROWS, columns: COLUMNS, frame, name: (i) => `a${i}.dcm` });
    const b = await writeSingleFrameSeries(folder, { studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.5`, count: 3, rows: ROWS, columns: COLUMNS, frame, name: (i) => `b${i}.dcm` });
    const lone = await writeSingleFrameSeries(folder, { studyInstanceUid: STUDY, seriesInstanceUid: `${STUDY}.6`, count: 1, rows: ROWS, columns: COLUMNS, frame, name: () => 'lone.dcm' });
    const run = join(folder, 'run.dcm');
    const text = join(folder, 'notes.dcm');
    await writeFile(run, smallRun(203));
    await writeFile(text, 'not DICOM');
    const runs = await groupFolderRuns([a[0]!, b[0]!, run, a[1]!, text, b[1]!, lone[0]!, b[2]!]);
    expect(runs).toEqual([
      { kind: 'series', seriesInstanceUid: `${STUDY}.4`, paths: a },
      { kind: 'series', seriesInstanceUid: `${STUDY}.5`, paths: b },
      { kind: 'file', path: run },
      { kind: 'file', path: text },
      { kind: 'file', path: lone[0] },
    ]);
    expect(seriesFolderName(`${STUDY}.4`, ['x'])).toBe(`${STUDY}.4`);
    for (const hostile of ['../../etc', '1.2/3', '', '1..2', `1.${'2'.repeat(70)}`]) expect(seriesFolderName(hostile, ['a0.dcm'])).toMatch(/^series-[0-9a-f]{16}$/);
  });

  it('a gateway stopped while a series is on its way sends it again as the same run: one request, answered once, the frames in sent/', async () => {
    const folder = join(servers.directory, 'incoming-6');
    await mkdir(folder, { recursive: true });
    const series = `${STUDY}.6`;
    const files = await writeSingleFrameSeries(folder, { studyInstanceUid: STUDY, seriesInstanceUid: series, count: 4, rows: ROWS, columns: COLUMNS, frame });
    responder.silent.add('watch-6'); // the platform takes the request and has not answered when the gateway stops
    try {
      const first = new Gateway(gatewayOptions(servers, 'watch-6'), { logger: memoryLogger() });
      await first.start();
      const before = new FolderWatcher(first, { folder, stableMs: 100, pollIntervalMs: 20, logger: memoryLogger() });
      await before.start();
      await vi.waitFor(() => expect(responder.requestsOf('watch-6')).toHaveLength(1), { timeout: 15_000, interval: 25 });
      await before.close();
      await first.close();
      await before.idle();
      // Nothing was answered: every frame is still where the modality put it.
      expect((await readdir(folder)).filter((n) => n.endsWith('.dcm')).sort()).toEqual(files.map((f) => basename(f)).sort());
      expect(await readdir(before.sentFolder)).toEqual([]);
    } finally {
      responder.silent.delete('watch-6');
    }
    await using second = new Gateway(gatewayOptions(servers, 'watch-6'), { logger: memoryLogger() });
    await second.start();
    const after = new FolderWatcher(second, { folder, stableMs: 100, pollIntervalMs: 20, logger: memoryLogger() });
    await after.start();
    try {
      await vi.waitFor(async () => expect((await readdir(after.sentFolder)).sort()).toEqual([series, `${series}.result.json`]), { timeout: 20_000, interval: 25 });
      await after.idle();
      // The same run (its file made again byte for byte joined the entry in the outbox): one request id, resent, never a second run.
      expect(new Set(responder.requestsOf('watch-6').map((r) => r.request.id)).size).toBe(1);
      expect((await readdir(join(after.sentFolder, series))).sort()).toEqual(files.map((f) => basename(f)).sort());
      expect(await readdir(join(folder, '.series'))).toEqual([]);
    } finally {
      await after.close();
    }
  });

  it('a file whose answer is late stays where it is and is waited for again, never moved to failed/', async () => {
    const folder = join(servers.directory, 'incoming-7');
    await mkdir(folder, { recursive: true });
    responder.silent.add('watch-7'); // a platform slower than resultTimeoutMs
    const logger = memoryLogger();
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-7', { resultTimeoutMs: 300, resendIntervalMs: 200 }), { logger: memoryLogger() });
    await gateway.start();
    const watcher = new FolderWatcher(gateway, { folder, stableMs: 50, pollIntervalMs: 20, logger });
    await watcher.start();
    try {
      await writeFile(join(folder, 'slow.dcm'), smallRun(206));
      await vi.waitFor(() => expect(logger.lines.filter((l) => /no answer yet/.test(l.message)).length).toBeGreaterThanOrEqual(2), { timeout: 15_000, interval: 25 });
      expect(await readdir(watcher.failedFolder)).toEqual([]);
      expect(await readdir(folder)).toContain('slow.dcm');
      // The answer comes at last (to a resend of the same request): the file goes to sent/ with it, one run throughout.
      responder.silent.delete('watch-7');
      await vi.waitFor(async () => expect((await readdir(watcher.sentFolder)).sort()).toEqual(['slow.dcm', 'slow.dcm.result.json']), { timeout: 15_000, interval: 25 });
      expect(new Set(responder.requestsOf('watch-7').map((r) => r.request.id)).size).toBe(1);
    } finally {
      responder.silent.delete('watch-7');
      await watcher.close();
      await watcher.idle();
    }
  });

  it('looks into subfolders, as a media export lays them out: each run goes to the same place under sent/, links are not followed', async () => {
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-8'), { logger: memoryLogger() });
    await gateway.start();
    const folder = join(servers.directory, 'incoming-8');
    const outside = join(servers.directory, 'outside-8');
    await mkdir(folder, { recursive: true });
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'elsewhere.dcm'), smallRun(210));
    await symlink(outside, join(folder, 'linked'));
    const answers: string[] = [];
    const watcher = new FolderWatcher(gateway, { folder, stableMs: 100, pollIntervalMs: 20, logger: memoryLogger(), onResult: ({ name, files }) => answers.push(`${name}: ${files.join(',')}`) });
    await watcher.start();
    const series = `${STUDY}.8`;
    try {
      // The export arrives after the watcher started: folders first, then their files.
      await mkdir(join(folder, 'DICOM', 'PAT1', 'SER1'), { recursive: true });
      await mkdir(join(folder, 'DICOM', 'PAT1', 'SER2'), { recursive: true });
      await mkdir(join(folder, 'DICOM', 'PAT1', 'SER3'), { recursive: true });
      await mkdir(join(folder, 'VIEWER'), { recursive: true });
      // Two runs whose files are named alike, in two series' folders.
      await writeFile(join(folder, 'DICOM', 'PAT1', 'SER1', 'IM000001'), smallRun(211));
      await writeFile(join(folder, 'DICOM', 'PAT1', 'SER2', 'IM000001'), smallRun(212));
      await writeSingleFrameSeries(join(folder, 'DICOM', 'PAT1', 'SER3'), { studyInstanceUid: STUDY, seriesInstanceUid: series, count: 3, rows: ROWS, columns: COLUMNS, frame, name: (i) => `IM${String(i).padStart(6, '0')}` });
      await writeFile(join(folder, 'VIEWER', 'VIEWER.EXE'), 'a viewer on the same disc: not DICOM');
      await writeFile(join(folder, 'DICOMDIR'), smallRun(213));

      await vi.waitFor(
        async () => {
          expect((await readdir(join(watcher.sentFolder, 'DICOM', 'PAT1', 'SER1'))).sort()).toEqual(['IM000001', 'IM000001.result.json']);
          expect((await readdir(join(watcher.sentFolder, 'DICOM', 'PAT1', 'SER2'))).sort()).toEqual(['IM000001', 'IM000001.result.json']);
          expect((await readdir(join(watcher.sentFolder, series, 'DICOM', 'PAT1', 'SER3'))).sort()).toEqual(['IM000000', 'IM000001', 'IM000002']);
        },
        { timeout: 15_000, interval: 25 },
      );
      await watcher.idle();
      expect(responder.requestsOf('watch-8')).toHaveLength(3);
      expect(answers.sort()).toEqual([
        'DICOM/PAT1/SER1/IM000001: DICOM/PAT1/SER1/IM000001',
        'DICOM/PAT1/SER2/IM000001: DICOM/PAT1/SER2/IM000001',
        `series ${series} (3 single frames): DICOM/PAT1/SER3/IM000000,DICOM/PAT1/SER3/IM000001,DICOM/PAT1/SER3/IM000002`,
      ]);
      // What is no run stays; the emptied folders too (an export may still be writing into them).
      expect(await readdir(join(folder, 'VIEWER'))).toEqual(['VIEWER.EXE']);
      expect(await readdir(join(folder, 'DICOM', 'PAT1', 'SER1'))).toEqual([]);
      expect((await readdir(folder)).sort()).toEqual(['.series', 'DICOM', 'DICOMDIR', 'VIEWER', 'failed', 'linked', 'sent']);
      // Nothing reached through the link was taken.
      expect(await readdir(outside)).toEqual(['elsewhere.dcm']);
      expect(await readdir(watcher.failedFolder)).toEqual([]);
    } finally {
      await watcher.close();
    }
  });

  it('refuses to start on a watched folder that is a file, with CONFIG_INVALID naming it', async () => {
    await using gateway = new Gateway(gatewayOptions(servers, 'watch-5'), { logger: memoryLogger() });
    const file = join(servers.directory, 'watch-5-is-a-file');
    await writeFile(file, 'not a folder');
    const watcher = new FolderWatcher(gateway, { folder: file, logger: memoryLogger() });
    await expect(watcher.start()).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('watch-5-is-a-file cannot be used') as string });
  });

    it('leaves the responder without errors', () => {
    expect(responder.errors).toEqual([]);
  });
});
