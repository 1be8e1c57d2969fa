import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway, type GatewayResult } from '@arteria/gateway';
import { DicomIntake, GatewayServiceConfig } from '@arteria/gateway-site';
import type { ErrorCode, RunOpenV1, SegmentV1 } from '@arteria/protocol';
import { RawDicomClient, wireObject } from './raw-dicom-client.js';
import { Responder, memoryLogger, objectBytes, startServers, writeColorRun, type Servers } from '@arteria/testing';
import { gatewayOptions } from './support.js';

const ROWS = 64;
const FRAMES = 60;
const FRAME_BYTES = ROWS * ROWS;

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  servers = await startServers();
  responder = await Responder.start(servers);
});

afterAll(async () => {
  await responder?.close();
  await servers?.close();
});

/** A gateway and its DICOM port for one device, a client connected to it, and the results the gateway delivers. */
async function openPort(device: string, incoming: string, deidentify = false) {
  const logger = memoryLogger();
  const gateway = new Gateway(gatewayOptions(servers, device, deidentify ? { deidentification: { enabled: true } } : {}), { logger });
  const folder = join(servers.directory, incoming);
  const intake = new DicomIntake(gateway, { aeTitle: 'ARTERIA', port: 0, host: '127.0.0.1', folder, stableMs: 600_000 }, logger);
  const results: GatewayResult[] = [];
  gateway.on('result', ({ result }) => results.push(result));
  await gateway.start();
  await intake.start();
  const client = await RawDicomClient.connect(intake.receiver.port);
  const close = async (): Promise<void> => {
    if (client.isOpen) client.drop();
    await intake.close();
    await gateway.close();
  };
  return { gateway, folder, intake, results, client, close };
}

/**
 * The DICOM port as it comes (streamWhileArriving is on by default): a multi-frame instance
 * is de-identified, uploaded and announced segment by segment while its C-STORE is still
 * arriving.
 */
describe('DICOM port streaming a C-STORE while it arrives', () => {
  it('is the default, for the service file as for DicomIntake', () => {
    expect(GatewayServiceConfig.parse({ gateway: {}, dicom: {} }).dicom?.streamWhileArriving).toBe(true);
  });

  it('uploads and announces segments before the last byte of the data set, with a de-identified header, and sends nothing twice', async () => {
    const { folder, intake, results, client, close } = await openPort('dimse-stream-1', 'incoming-stream-1', true);
    try {
      const run = synthesizeXaRun({ seed: 61, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8, patient: { name: 'Doe^Jane', id: 'MRN-0042', birthDate: '19510704', sex: 'F' } });
      const object = wireObject(Buffer.from(run.bytes));
      await client.associate('ARTERIA', 'CATHLAB', object);
      // The header and the first 30 frames; the association then waits.
      const split = object.dataset.length - 30 * FRAME_BYTES;
      client.sendStore(object, object.dataset.subarray(0, split), false);
      const mine = (): (RunOpenV1 | SegmentV1)[] => responder.segmented.filter((s): s is RunOpenV1 | SegmentV1 => s.device === 'dimse-stream-1' && s.kind !== 'run-end');
      await vi.waitFor(() => expect(mine().filter((s) => s.kind === 'segment').length).toBeGreaterThanOrEqual(3), { timeout: 30_000, interval: 20 });

      const open = mine().find((s): s is RunOpenV1 => s.kind === 'run-open');
      expect(open?.instanceUid).not.toBe(run.truth.sopInstanceUid);
      const header = await objectBytes(servers.s3, open?.header.uri ?? '');
      expect(header.toString('latin1')).not.toContain('Doe^Jane');
      expect(header.toString('latin1')).not.toContain('MRN-0042');

      client.sendMore(object.dataset.subarray(split));
      expect(await client.storeStatus()).toBe(0);
      await client.release();
      await vi.waitFor(() => expect(results.some((r) => r.requestId === open?.id)).toBe(true), { timeout: 30_000, interval: 20 });
      await intake.idle();

      const steps = responder.segmented.filter((s) => s.device === 'dimse-stream-1');
      const segments = steps.filter((s): s is SegmentV1 => s.kind === 'segment');
      expect(steps.filter((s) => s.kind === 'run-open')).toHaveLength(1);
      expect(segments.map((s) => s.index)).toEqual(segments.map((_, i) => i));
      expect(segments.reduce((n, s) => n + s.frameCount, 0)).toBe(FRAMES);
      expect(results.filter((r) => r.requestId === open?.id)).toHaveLength(1);
      expect(results.find((r) => r.requestId === open?.id)?.output).toEqual({ frames: FRAMES, segments: segments.length });
      // The whole-file path sent nothing for it, and the received files are gone.
      expect(responder.requestsOf('dimse-stream-1')).toEqual([]);
      await vi.waitFor(async () => expect(await readdir(folder)).toEqual([]), { timeout: 10_000, interval: 20 });
      await vi.waitFor(async () => expect(await readdir(`${folder}.streaming`)).toEqual([]), { timeout: 10_000, interval: 20 });
      expect(responder.errors).toEqual([]);
    } finally {
      await close();
    }
  }, 90_000);

  it('streams a color capture (True Color Secondary Capture) while it arrives, segments before the last byte, three samples a pixel', async () => {
    const { results, client, intake, close } = await openPort('dimse-stream-color', 'incoming-stream-color', true);
    try {
      const capture = writeColorRun({ rows: ROWS, columns: ROWS, frames: FRAMES, rgb: (f, p) => [(p + f) & 255, (p * 3) & 255, f * 4] });
      const object = wireObject(capture);
      await client.associate('ARTERIA', 'CATHLAB', object);
      // The header and the first half of the frames; the rest once segments have gone up.
      const split = object.dataset.length - (FRAMES / 2) * FRAME_BYTES * 3;
      client.sendStore(object, object.dataset.subarray(0, split), false);
      const open = (): RunOpenV1 | undefined => responder.segmented.find((s): s is RunOpenV1 => s.device === 'dimse-stream-color' && s.kind === 'run-open');
      await vi.waitFor(() => expect(responder.segmented.filter((s) => s.device === 'dimse-stream-color' && s.kind === 'segment').length).toBeGreaterThanOrEqual(2), { timeout: 30_000, interval: 20 });
      client.sendMore(object.dataset.subarray(split));
      expect(await client.storeStatus()).toBe(0);
      await client.release();
      await vi.waitFor(() => expect(results.some((r) => r.requestId === open()?.id)).toBe(true), { timeout: 30_000, interval: 20 });
      await intake.idle();
      const segments = responder.segmented.filter((s): s is SegmentV1 => s.device === 'dimse-stream-color' && s.kind === 'segment');
      expect(segments.reduce((n, s) => n + s.frameCount, 0)).toBe(FRAMES);
      // Each segment holds its frames' three samples a pixel, as they came.
      for (const segment of segments) expect((await objectBytes(servers.s3, segment.object.uri)).length).toBe(segment.frameCount * FRAME_BYTES * 3);
      expect(results.find((r) => r.requestId === open()?.id)?.output).toEqual({ frames: FRAMES, segments: segments.length });
      expect(responder.requestsOf('dimse-stream-color')).toEqual([]); // nothing went whole
    } finally {
      await close();
    }
  }, 90_000);

  const refusals: [string, string, ErrorCode][] = [
    ['an algorithm without the incremental contract (NOT_INCREMENTAL)', 'dimse-stream-3', 'NOT_INCREMENTAL'],
    ['a platform that predates segmented runs (INVALID_REQUEST)', 'dimse-stream-4', 'INVALID_REQUEST'],
    ['a device at its cap of open runs (TOO_MANY_OPEN_RUNS)', 'dimse-stream-5', 'TOO_MANY_OPEN_RUNS'],
  ];
  it.each(refusals)('against %s: the study arrives once, whole, and is answered once', async (_, device, code) => {
    responder.refuseSegmented.set(device, code);
    const { folder, intake, results, client, close } = await openPort(device, `incoming-${device}`);
    try {
      const run = synthesizeXaRun({ seed: 63, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 });
      const object = wireObject(Buffer.from(run.bytes));
      await client.associate('ARTERIA', 'CATHLAB', object);
      const split = object.dataset.length - 30 * FRAME_BYTES;
      client.sendStore(object, object.dataset.subarray(0, split), false);
      // Streamed first (the port does not know yet), and refused.
      await vi.waitFor(() => expect(responder.segmented.some((s) => s.device === device && s.kind === 'run-open')).toBe(true), { timeout: 30_000, interval: 20 });
      client.sendMore(object.dataset.subarray(split));
      expect(await client.storeStatus()).toBe(0);
      await client.release();
      await vi.waitFor(() => expect(responder.requestsOf(device)).toHaveLength(1), { timeout: 30_000, interval: 20 });
      const [whole] = responder.requestsOf(device);
      expect(whole?.objectComplete).toBe(true);
      await vi.waitFor(() => expect(results.some((r) => r.requestId === whole?.request.id)).toBe(true), { timeout: 30_000, interval: 20 });
      await intake.idle();
      // Answered once: the whole file's result; the refused stream is not an answer.
      expect(results.map((r) => [r.requestId, r.status])).toEqual([[whole?.request.id, 'ok']]);
      expect(responder.requestsOf(device)).toHaveLength(1);
      await vi.waitFor(async () => expect(await readdir(folder)).toEqual([]), { timeout: 10_000, interval: 20 });
      await vi.waitFor(async () => expect(await readdir(`${folder}.streaming`)).toEqual([]), { timeout: 10_000, interval: 20 });
      expect(responder.errors).toEqual([]);
    } finally {
      responder.refuseSegmented.delete(device);
      await close();
    }
  }, 90_000);

  it('withdraws the streamed run of an instance whose association drops before its last byte', async () => {
    const { gateway, folder, client, close } = await openPort('dimse-stream-2', 'incoming-stream-2', true);
    try {
      const run = synthesizeXaRun({ seed: 62, rows: ROWS, columns: ROWS, frames: FRAMES, bitsStored: 8 });
      const object = wireObject(Buffer.from(run.bytes));
      await client.associate('ARTERIA', 'CATHLAB', object);
      client.sendStore(object, object.dataset.subarray(0, object.dataset.length - 30 * FRAME_BYTES), false);
      await vi.waitFor(() => expect(responder.segmented.some((s) => s.device === 'dimse-stream-2' && s.kind === 'segment')).toBe(true), { timeout: 30_000, interval: 20 });
      client.drop();
      await vi.waitFor(() => expect(gateway.stats().pending).toBe(0), { timeout: 30_000, interval: 20 });
      expect(responder.segmented.filter((s) => s.device === 'dimse-stream-2' && s.kind === 'run-end')).toEqual([]);
      await vi.waitFor(async () => expect(await readdir(`${folder}.streaming`)).toEqual([]), { timeout: 10_000, interval: 20 });
    } finally {
      await close();
    }
  }, 90_000);
});
