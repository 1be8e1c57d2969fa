import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Gateway } from '@arteria/gateway';
import { DicomIntake, ResultDelivery } from '@arteria/gateway-site';
import { decodeFrames, decodeRun, parseDataSet } from '@arteria/dicom';
import { JPEG_LOSSLESS_SV1, exec, items, memoryLogger, objectBytes, pixelElement, readDataset, startServersWithResponder, startStoreScp, value, writeSingleFrameSeries, type Responder, type Servers } from '@arteria/testing';
import { gatewayOptions } from './support.js';

const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.99';
const ROWS = 24;
const COLUMNS = 20;

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

afterAll(async () => servers?.close());

/** Frame `i` of a run: a ramp offset by 20 grey levels a frame, so that order shows. */
const frame = (i: number): Uint8Array => Uint8Array.from({ length: ROWS * COLUMNS }, (_, p) => (i * 20 + (p % 50)) & 0xff);

/** Single-frame instances of `series` (writeSingleFrameSeries); `sizes` lets one frame have other dimensions. */
const singleFrames = (folder: string, series: string, count: number, sizes?: (i: number) => [number, number]): Promise<string[]> =>
  writeSingleFrameSeries(folder, { studyInstanceUid: STUDY, seriesInstanceUid: series, count, rows: ROWS, columns: COLUMNS, frame, ...(sizes === undefined ? {} : { sizes }) });

describe('a series of single-frame instances by C-STORE', () => {
  async function intakeFor(device: string): Promise<{ gateway: Gateway; intake: DicomIntake; folder: string; logger: ReturnType<typeof memoryLogger> }> {
    const logger = memoryLogger();
    const gateway = new Gateway(gatewayOptions(servers, device, { deidentification: { enabled: true } }), { logger });
    const folder = join(servers.directory, `incoming-${device}`);
    await mkdir(folder, { recursive: true });
    const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 300, streamWhileArriving: false }, logger);
    await gateway.start();
    await intake.start();
    return { gateway, intake, folder, logger };
  }

  it('goes as one multi-frame run, frames in Instance Number order, at the rate of their acquisition times', async () => {
    const source = join(servers.directory, 'series-source');
    await mkdir(source, { recursive: true });
    const files = await singleFrames(source, `${STUDY}.3`, 6);
    const { gateway, intake, folder } = await intakeFor('series-1');
    try {
      // Stored last frame first: the order comes from the instances, not from their arrival.
      await exec('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), ...[...files].reverse()]);
      await vi.waitFor(() => expect(responder.requestsOf('series-1')).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await intake.idle();
      const uploaded = await objectBytes(servers.s3, responder.requestsOf('series-1')[0]!.request.inputs[0]?.uri ?? '');
      const { header, frames } = decodeFrames(uploaded);
      expect(frames.frameCount).toBe(6);
      expect([frames.rows, frames.columns]).toEqual([ROWS, COLUMNS]);
      for (let i = 0; i < 6; i++) expect(Buffer.from(frames.pixels.subarray(i * ROWS * COLUMNS, (i + 1) * ROWS * COLUMNS)).equals(Buffer.from(frame(i)))).toBe(true);
      expect(header.frameTimeMs).toBeCloseTo(1000 / 15, 1);
      // Nothing stays behind: not the instances, not the run made of them.
      expect(await readdir(folder)).toEqual([]);
      expect(await readdir(`${folder}.series`)).toEqual([]);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('reports at the PACS with every instance of the series as evidence, none of them leaving the site', async () => {
    const source = join(servers.directory, 'series-source-4');
    await mkdir(source, { recursive: true });
    const files = await singleFrames(source, `${STUDY}.4`, 5);
    const originals = await Promise.all(files.map(async (f) => parseDataSet(await readFile(f)).string('x00080018') ?? ''));
    const pacsFolder = join(servers.directory, 'pacs-4');
    await mkdir(pacsFolder, { recursive: true });
    const pacs = await startStoreScp(pacsFolder);
    const { gateway, intake, logger } = await intakeFor('series-4');
    const delivery = new ResultDelivery(gateway, { folder: join(servers.directory, 'reports-4'), node: { host: '127.0.0.1', port: pacs.port, calledAeTitle: pacs.aeTitle, callingAeTitle: 'ARTERIA', timeoutMs: 5_000 }, attempts: 3, retryDelayMs: 50 }, logger);
    await delivery.start();
    try {
      await exec('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), ...[...files].reverse()]);
      await vi.waitFor(async () => expect((await readdir(pacsFolder)).filter((f) => f.startsWith('SR'))).toHaveLength(1), { timeout: 15_000, interval: 25 });
      const [report] = (await readdir(pacsFolder)).filter((f) => f.startsWith('SR'));
      const { ds } = readDataset(await readFile(join(pacsFolder, report!)));
      // The finding's image item names the run's own instance (the first frame's); the evidence lists every frame, in order.
      const evidence = items(items(items(ds, '0040A375')[0], '00081115')[0], '00081199').map((item) => String(value(item, '00081155')));
      expect(evidence).toEqual(originals);
      const image = items(ds, '0040A730').find((item) => value(item, '0040A040') === 'IMAGE');
      expect(String(value(items(image, '00081199')[0], '00081155'))).toBe(originals[0]);
      // dciodvfy (dicom3tools) validates the SR against its IOD: no errors.
      const { stderr } = await exec('dciodvfy', [join(pacsFolder, report!)]).catch((err: { stderr: string }) => err);
      expect(stderr.split('\n').filter((line) => line.startsWith('Error'))).toEqual([]);
      // The list travelled in the run's header on-site only: what went up holds none of the original UIDs.
      const uploaded = await objectBytes(servers.s3, responder.requestsOf('series-4')[0]!.request.inputs[0]?.uri ?? '');
      for (const uid of originals) expect(uploaded.includes(uid), `${uid} was uploaded`).toBe(false);
      expect(uploaded.includes('ARTERIA SERIES')).toBe(false);
    } finally {
      await delivery.close();
      await intake.close();
      await gateway.close();
      await pacs.close();
    }
  });

  it('keeps compressed frames as they came, each frame\'s fragments behind an offset table', async () => {
    const source = join(servers.directory, 'series-jpeg');
    await mkdir(source, { recursive: true });
    const natives = await singleFrames(source, `${STUDY}.5`, 5);
    // JPEG Lossless, as a modality that compresses what it stores sends it.
    const files = await Promise.all(natives.map(async (file) => {
      const out = `${file}.jpeg.dcm`;
      await exec('dcmcjpeg', ['+e1', file, out]);
      return out;
    }));
    const { gateway, intake, folder } = await intakeFor('series-3');
    try {
      await exec('storescu', ['-xs', '-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), ...[...files].reverse()]);
      await vi.waitFor(() => expect(responder.requestsOf('series-3')).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await intake.idle();
      const uploaded = await objectBytes(servers.s3, responder.requestsOf('series-3')[0]!.request.inputs[0]?.uri ?? '');
      expect(pixelElement(uploaded).syntax).toBe(JPEG_LOSSLESS_SV1);
      expect(parseDataSet(uploaded).elements.x7fe00010?.basicOffsetTable).toHaveLength(5);
      const { frames } = await decodeRun(uploaded);
      expect(frames.frameCount).toBe(5);
      for (let i = 0; i < 5; i++) expect(Buffer.from(frames.pixels.subarray(i * ROWS * COLUMNS, (i + 1) * ROWS * COLUMNS)).equals(Buffer.from(frame(i)))).toBe(true);
      expect(await readdir(folder)).toEqual([]);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });

  it('goes instance by instance, each refused on its own, when its frames differ in size', async () => {
    const source = join(servers.directory, 'series-mixed');
    await mkdir(source, { recursive: true });
    const files = await singleFrames(source, `${STUDY}.4`, 3, (i) => (i === 1 ? [ROWS, COLUMNS + 2] : [ROWS, COLUMNS]));
    const { gateway, intake, folder, logger } = await intakeFor('series-2');
    try {
      await exec('storescu', ['-aet', 'CATHLAB', '-aec', 'ARTERIA', '127.0.0.1', String(intake.receiver.port), ...files]);
      await vi.waitFor(async () => expect(await readdir(`${folder}.failed`).catch(() => [])).toHaveLength(1), { timeout: 10_000, interval: 20 });
      await intake.idle();
      expect(responder.requestsOf('series-2')).toHaveLength(0);
      expect(logger.lines.some((l) => l.message.includes('could not be made into one run') && String(l.fields?.error).includes('the series\' first'))).toBe(true);
      expect(logger.lines.filter((l) => l.fields?.code === 'UNSUPPORTED_DICOM').length).toBeGreaterThanOrEqual(3);
    } finally {
      await intake.close();
      await gateway.close();
    }
  });
});
