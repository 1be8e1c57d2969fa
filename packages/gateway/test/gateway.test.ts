import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encapsulateFrames, synthesizeXaRun, readHeader } from '@arteria/dicom';
import { ArteriaError, ConfigV1, ReportedConfigV1, StatusV1, decodePayload, deviceTopic, encodePayload, requestId } from '@arteria/protocol';
import { Gateway, type GatewayEvents, type GatewayResult } from '@arteria/gateway';
import { gatewayOptions, listKeys, memoryLogger, objectBytes, sha256, smallRun, startServersWithResponder, type Responder, type Servers } from './helpers.js';

let servers: Servers;
let responder: Responder;

beforeAll(async () => {
  ({ servers, responder } = await startServersWithResponder());
});

// Closes the responder, then the broker and store.
afterAll(async () => servers?.close());

async function startGateway(device: string, overrides: Parameters<typeof gatewayOptions>[2] = {}, logger = memoryLogger()): Promise<Gateway> {
  const gateway = new Gateway(gatewayOptions(servers, device, overrides), { logger });
  await gateway.start();
  expect(gateway.state).toBe('running');
  expect(gateway.stats().connected).toBe(true);
  return gateway;
}

describe('Gateway', () => {
  it('uploads a run, publishes its request and resolves with the result', async () => {
    await using gateway = await startGateway('cathlab-1');
    const bytes = smallRun(1);
    const header = readHeader(bytes);
    const states: string[] = [];
    gateway.on('entry', (e) => states.push(e.state));

    const result: GatewayResult = await gateway.send({ bytes, name: 'run-1.dcm' });

    expect(result.status).toBe('ok');
    expect(result.timings.received).toBeGreaterThanOrEqual(result.timings.resultPublished ?? 0);
    expect(result.timings.acquired).toBeLessThanOrEqual(result.timings.uploaded ?? 0);
    expect(result.timings.uploaded).toBeLessThanOrEqual(result.timings.published ?? 0);
    const [seen] = responder.requestsOf('cathlab-1');
    if (seen === undefined) throw new Error('the platform saw no request');
    const { request } = seen;
    expect(request.instanceUid).toBe(header.sopInstanceUid);
    expect(request.id).toBe(requestId({ tenant: 'acme', device: 'cathlab-1', instanceUid: header.sopInstanceUid, sha256: sha256(bytes), algorithm: 'contrast-injection@^1', inputUris: request.inputs.map((i) => i.uri) }));
    expect(result.requestId).toBe(request.id);
    const input = request.inputs[0];
    expect(input).toMatchObject({ size: bytes.length, sha256: sha256(bytes), contentType: 'application/dicom' });
    expect(input?.uri).toMatch(new RegExp(`^s3://arteria-runs/acme/cathlab-1/${header.sopInstanceUid.replaceAll('.', '\\.')}/[0-9a-f-]{36}\\.dcm$`));
    // The stored object is exactly the run, and it was complete when the request arrived.
    expect((await objectBytes(servers.s3, input?.uri ?? '')).equals(bytes)).toBe(true);
    expect(seen.objectComplete).toBe(true);
    // 'published' (the broker's PUBACK) usually comes before the result, but need not.
    expect(states.filter((s) => s !== 'published')).toEqual(['pending', 'uploaded', 'done']);
    expect(gateway.stats()).toMatchObject({ sent: 1, done: 1, pending: 0 });
    // The spooled copy of the bytes is gone once the run is answered.
    expect(await readdir(`${gateway.config.outboxPath}.spool`)).toEqual([]);
  });

  it('streams a file larger than a part as a multipart upload, with progress, and publishes only after it completes', async () => {
    await using gateway = await startGateway('cathlab-2', { partSizeBytes: 5 * 1024 * 1024, uploadConcurrency: 2 });
    const { bytes } = synthesizeXaRun({ seed: 2, rows: 512, columns: 512, frames: 24, frameRateHz: 15, bitsStored: 12, contrast: null });
    expect(bytes.length).toBeGreaterThan(12 * 1024 * 1024);
    const path = join(servers.directory, 'big-run.dcm');
    await writeFile(path, bytes);
    const progress: GatewayEvents['progress'][] = [];
    gateway.on('progress', (p) => progress.push(p));
    const uploadedAfterLastPart: boolean[] = [];
    gateway.on('entry', (e) => {
      if (e.state === 'uploaded') uploadedAfterLastPart.push(progress.at(-1)?.loadedBytes === bytes.length);
    });

    const result = await gateway.send(path);

    const [seen] = responder.requestsOf('cathlab-2');
    expect(seen?.objectComplete).toBe(true);
    expect(seen?.request.inputs[0]?.sha256).toBe(sha256(bytes));
    expect((await objectBytes(servers.s3, seen?.request.inputs[0]?.uri ?? '')).equals(bytes)).toBe(true);
    expect(result.output).toMatchObject({ inputSha256: sha256(bytes) });
    // Three parts (5 + 5 + the rest), each reported; the last report covers every byte.
    expect(new Set(progress.map((p) => p.part))).toEqual(new Set([1, 2, 3]));
    expect(progress.at(-1)).toMatchObject({ loadedBytes: bytes.length, totalBytes: bytes.length });
    expect(uploadedAfterLastPart).toEqual([true]);
  });

  it('refuses a file that is not DICOM before uploading or publishing anything', async () => {
    await using gateway = await startGateway('cathlab-3');
    const path = join(servers.directory, 'notes.dcm');
    await writeFile(path, 'this is a text file, not a DICOM run\n'.repeat(20));

    const fromFile = await gateway.send(path).catch((err: unknown) => err);
    const fromBytes = await gateway.send({ bytes: Buffer.from('PK\u0003\u0004 a zip file'), name: 'x.zip' }).catch((err: unknown) => err);

    expect(fromFile).toBeInstanceOf(ArteriaError);
    expect((fromFile as ArteriaError).code).toBe('INVALID_DICOM');
    expect((fromBytes as ArteriaError).code).toBe('INVALID_DICOM');
    expect(await listKeys(servers.s3, 'acme/cathlab-3/')).toEqual([]);
    expect(await readdir(`${gateway.config.outboxPath}.spool`)).toEqual([]);
    expect(gateway.stats()).toMatchObject({ sent: 0, published: 0, pending: 0 });
    // A run sent afterwards is the first request this device ever published.
    await gateway.send({ bytes: smallRun(3), name: 'ok.dcm' });
    expect(responder.requestsOf('cathlab-3')).toHaveLength(1);
  });

  it('refuses a single-frame image as UNSUPPORTED_DICOM', async () => {
    await using gateway = await startGateway('cathlab-4');
    const single = synthesizeXaRun({ seed: 4, rows: 32, columns: 32, frames: 1, frameRateHz: 15, bitsStored: 8, contrast: null }).bytes;
    await expect(gateway.send({ bytes: single, name: 'single.dcm' })).rejects.toMatchObject({ code: 'UNSUPPORTED_DICOM' });
    expect(await listKeys(servers.s3, 'acme/cathlab-4/')).toEqual([]);
  });

  it('refuses a run in a transfer syntax the platform does not decode before anything is stored or uploaded', async () => {
    await using gateway = await startGateway('cathlab-video');
    const { bytes } = synthesizeXaRun({ seed: 6, rows: 64, columns: 64, frames: 8, frameRateHz: 15, bitsStored: 8 });
    // The frames as H.264 video: a few megabytes that would otherwise cross the link only to be refused.
    const video = encapsulateFrames(bytes, '1.2.840.10008.1.2.4.102', [new Uint8Array(4 * 2 ** 20).fill(7)]);
    await expect(gateway.send({ bytes: video, name: 'video.dcm' })).rejects.toMatchObject({ code: 'UNSUPPORTED_TRANSFER_SYNTAX', message: expect.stringContaining('MPEG-4 AVC/H.264') as unknown });
    expect(await listKeys(servers.s3, 'acme/cathlab-video/')).toEqual([]);
    expect(gateway.stats()).toMatchObject({ pending: 0, sent: 0 });
  });

  it('resends an unanswered request with the same id until the result comes', async () => {
    await using gateway = await startGateway('cathlab-5', { resendIntervalMs: 100 });
    responder.ignoreNext.set('cathlab-5', 2);

    const result = await gateway.send({ bytes: smallRun(5), name: 'lost.dcm' });

    const copies = responder.requestsOf('cathlab-5').map((s) => s.request);
    expect(copies.length).toBeGreaterThanOrEqual(3);
    expect(new Set(copies.map((r) => r.id))).toEqual(new Set([result.requestId]));
    // The same request every time: inputs and every timing (published is the first publish).
    for (const copy of copies) expect(copy).toEqual(copies[0]);
    expect(gateway.stats()).toMatchObject({ sent: 1, done: 1, pending: 0 });
    expect(gateway.stats().published).toBeGreaterThanOrEqual(3);
  });

  it('keeps a request the platform rate-limited and asks again until it is answered', async () => {
    await using gateway = await startGateway('cathlab-5b', { resendIntervalMs: 100 });
    responder.rateLimitNext.set('cathlab-5b', 2);

    const result = await gateway.send({ bytes: smallRun(55), name: 'burst.dcm' });

    expect(result.status).toBe('ok');
    expect(responder.requestsOf('cathlab-5b').length).toBeGreaterThanOrEqual(3);
    expect(gateway.stats()).toMatchObject({ sent: 1, done: 1, pending: 0 });
  });

  it('refuses new runs with OUTBOX_FULL instead of dropping runs it holds', async () => {
    responder.silent.add('cathlab-6');
    await using gateway = await startGateway('cathlab-6', { maxOutboxEntries: 2, resendIntervalMs: 100 });
    const accepted = Promise.all([gateway.send({ bytes: smallRun(61), name: 'a.dcm' }), gateway.send({ bytes: smallRun(62), name: 'b.dcm' })]);
    await responder.until(() => new Set(responder.requestsOf('cathlab-6').map((s) => s.request.id)).size === 2);

    await expect(gateway.send({ bytes: smallRun(63), name: 'c.dcm' })).rejects.toMatchObject({ code: 'OUTBOX_FULL', retryable: true });
    expect(await readdir(`${gateway.config.outboxPath}.spool`)).toHaveLength(2);
    expect(gateway.stats()).toMatchObject({ sent: 2, pending: 2 });

    // The accepted runs are resent until the platform answers; then there is room again.
    responder.silent.delete('cathlab-6');
    const results = await accepted;
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(gateway.stats().pending).toBe(0);
    await gateway.send({ bytes: smallRun(63), name: 'c.dcm' });
  });

  it('withdraws a run whose sender aborts', async () => {
    responder.silent.add('cathlab-7');
    await using gateway = await startGateway('cathlab-7');
    const controller = new AbortController();
    const states: string[] = [];
    gateway.on('entry', (e) => states.push(e.state));
    const sending = gateway.send({ bytes: smallRun(7), name: 'a.dcm' }, { signal: controller.signal });
    await responder.until(() => responder.requestsOf('cathlab-7').length === 1);
    controller.abort(new Error('procedure cancelled'));
    await expect(sending).rejects.toThrow('procedure cancelled');
    expect(states.at(-1)).toBe('cancelled');
    expect(gateway.stats().pending).toBe(0);
  });

  it('rejects sends before start and after close', async () => {
    const gateway = new Gateway(gatewayOptions(servers, 'cathlab-8'), { logger: memoryLogger() });
    await expect(gateway.send({ bytes: smallRun(8), name: 'a.dcm' })).rejects.toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    await gateway.start();
    const closing = gateway.close();
    expect(gateway.close()).toBe(closing);
    await closing;
    await gateway.close();
    expect(gateway.state).toBe('closed');
    await expect(gateway.send({ bytes: smallRun(8), name: 'a.dcm' })).rejects.toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
    await expect(gateway.start()).rejects.toMatchObject({ code: 'GATEWAY_NOT_RUNNING' });
  });

  it('joins a second send of a file that is still on its way instead of sending it twice', async () => {
    responder.silent.add('cathlab-9');
    await using gateway = await startGateway('cathlab-9', { resendIntervalMs: 100 });
    const path = join(servers.directory, 'twice.dcm');
    await writeFile(path, smallRun(9));
    const sends = [gateway.send(path), gateway.send(path)];
    await responder.until(() => responder.requestsOf('cathlab-9').length >= 1);
    responder.silent.delete('cathlab-9');
    const [a, b] = await Promise.all(sends);
    expect(a).toEqual(b);
    expect(gateway.stats()).toMatchObject({ sent: 1, done: 1, pending: 0 });
    expect(await listKeys(servers.s3, 'acme/cathlab-9/')).toHaveLength(1);
  });

  it('announces online, in-procedure and offline status, and applies the fleet config', async () => {
    const observer = connect(servers.mqttUrl, { protocolVersion: 4, clientId: 'observer', clean: true });
    try {
      await new Promise<void>((resolve) => observer.once('connect', () => resolve()));
      const statuses: StatusV1[] = [];
      const reported: ReportedConfigV1[] = [];
      observer.on('message', (topic, payload) => {
        if (topic.endsWith('/status')) statuses.push(decodePayload(StatusV1, payload));
        if (topic.endsWith('/config/reported')) reported.push(decodePayload(ReportedConfigV1, payload));
      });
      const address = { tenant: 'acme', device: 'cathlab-10' };
      await observer.subscribeAsync([deviceTopic(address, 'status'), deviceTopic(address, 'config/reported')], { qos: 1 });
      const config: ConfigV1 = { v: 1, version: 7, algorithms: ['contrast-injection@1.0.0'] };
      await observer.publishAsync(deviceTopic(address, 'config'), encodePayload(config), { qos: 1, retain: true });

      const gateway = new Gateway(gatewayOptions(servers, 'cathlab-10'), { logger: memoryLogger() });
      // The retained config arrives right after subscribing: listen before start().
      const applied = new Promise<ConfigV1>((resolve) => gateway.on('config', (e) => resolve(e.config)));
      await gateway.start();
      expect(await applied).toEqual(config);
      await gateway.setInProcedure(true);
      const result = await gateway.send({ bytes: smallRun(10), name: 'a.dcm' });
      expect(responder.seen.find((s) => s.request.id === result.requestId)?.request.algorithm).toBe('contrast-injection@1.0.0');
      await gateway.close();

      await vi.waitFor(() => expect(statuses.at(-1)?.state).toBe('offline'), { timeout: 20_000, interval: 10 });
      expect(statuses.map((s) => [s.state, s.inProcedure ?? false])).toEqual([
        ['online', false],
        ['online', true],
        ['offline', true],
      ]);
      expect(statuses[0]?.gatewayVersion).toBe('0.1.0');
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({ v: 1, version: 7, applied: true, activeVersion: 7, active: config, gatewayVersion: '0.1.0' });
    } finally {
      await observer.endAsync(true);
    }
  });

  it('stops waiting with RESULT_TIMEOUT but keeps the run, whose late result still arrives', async () => {
    responder.silent.add('cathlab-11');
    const logger = memoryLogger();
    await using gateway = await startGateway('cathlab-11', { resultTimeoutMs: 100, resendIntervalMs: 100 }, logger);
    const error = await gateway.send({ bytes: smallRun(11), name: 'slow.dcm' }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'RESULT_TIMEOUT', retryable: true });
    expect(gateway.stats().pending).toBe(1);

    const late = new Promise<GatewayResult>((resolve) => gateway.on('result', (e) => resolve(e.result)));
    responder.silent.delete('cathlab-11');
    const result = await late;
    expect(result.status).toBe('ok');
    expect(gateway.stats()).toMatchObject({ pending: 0, done: 1 });

    // The platform answering the same request again changes nothing; the gateway says so.
    const request = responder.requestsOf('cathlab-11')[0]?.request;
    if (request === undefined) throw new Error('no request seen');
    await responder.answer(request);
    await vi.waitFor(() => expect(logger.lines.some((l) => l.message === 'ignoring a result the outbox is not waiting for' && l.fields?.entryState === 'done')).toBe(true), {
      timeout: 20_000,
      interval: 10,
    });
    expect(gateway.stats().done).toBe(1);
  });

  it('leaves the responder without errors', () => {
    expect(responder.errors).toEqual([]);
  });
});
