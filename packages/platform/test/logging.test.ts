import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { ArteriaError, deviceToken, deviceUsername, encodePayload, epochNow, requestId, type RequestV1, type ResultV1 } from '@arteria/protocol';
import { EmbeddedPlatform } from '../src/embedded/embedded-platform.js';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { Worker } from '@arteria/worker';
import { createLogger, logRequestEvent, type LogLevel, type RequestEvent } from '@arteria/telemetry';
import { createS3Client } from '@arteria/engine-s3';
import { encodeTask } from '@arteria/ports';
import type { S3Client } from '@aws-sdk/client-s3';
import { TestDevice } from '@arteria/testing';
import { OPS_TOKEN, SECRET, fixtureAlgorithm, tempDir } from './support/platform.js';

type Line = Record<string, unknown> & { level: string; msg: string; event?: string; requestId?: string };

/** A logger whose JSON lines are kept, parsed, for the test to read. */
function capturedLogger(level: LogLevel = 'info', role = 'platform'): { logger: ReturnType<typeof createLogger>; lines: Line[]; text: () => string } {
  const raw: string[] = [];
  const logger = createLogger({ role, level, destination: { write: (line: string) => raw.push(line) } });
  return {
    logger,
    get lines() {
      return raw.map((line) => JSON.parse(line) as Line);
    },
    text: () => raw.join(''),
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const limit = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > limit) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const eventsOf = (lines: Line[], id: string): string[] => lines.filter((l) => l.requestId === id && l.event !== undefined).map((l) => String(l.event));

describe('structured logs: one line per request lifecycle event, no PHI', () => {
  const PATIENT = { name: 'Doe^Jane^Marie', id: 'PAT-4242-XYZ' };
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let platform: EmbeddedPlatform;
  let s3: S3Client;
  let device: TestDevice;
  const log = capturedLogger('info');
  const bucket = 'arteria-runs';

  beforeAll(async () => {
    tmp = await tempDir('logging');
    platform = await EmbeddedPlatform.start(
      { mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: tmp.dir, workers: 1, tenants: { acme: SECRET }, algorithmDirs: [fixtureAlgorithm('echo'), fixtureAlgorithm('throws')], opsToken: OPS_TOKEN },
      undefined,
      undefined,
      log.logger,
    );
    s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
    device = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-1');
  });
  afterAll(async () => {
    await device.close();
    s3.destroy();
    await platform.close();
    await tmp.remove();
  });

  it('logs admitted, leased, computed and delivered once each, with ids, algorithm@version and stage durations', async () => {
    const run = synthesizeXaRun({ seed: 11, rows: 32, columns: 32, frames: 6, bitsStored: 8, patient: PATIENT });
    expect(run.bytes.includes(PATIENT.name)).toBe(true); // the input really carries the patient's identity
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1');
    await device.publishRaw(encodePayload(request));
    expect((await device.next((r) => r.requestId === request.id)).status).toBe('ok');
    await until(() => eventsOf(log.lines, request.id).includes('delivered'), 'the delivered line');

    expect(eventsOf(log.lines, request.id)).toEqual(['admitted', 'leased', 'computed', 'delivered']);
    const lines = log.lines.filter((l) => l.requestId === request.id);
    for (const line of lines) {
      expect(line).toMatchObject({ level: 'info', role: 'platform', tenant: 'acme', device: 'cath-lab-1', algorithm: 'echo@1.0.0', msg: `request ${line.event}` });
      expect(typeof line.time).toBe('string');
    }
    const durations = (event: RequestEvent): Record<string, number> => lines.find((l) => l.event === event)?.durationsMs as Record<string, number>;
    expect(Object.keys(durations('admitted'))).toEqual(expect.arrayContaining(['enqueued']));
    expect(Object.keys(durations('computed'))).toEqual(expect.arrayContaining(['leased', 'fetched', 'computed']));
    const delivered = durations('delivered');
    for (const stage of ['enqueued', 'leased', 'fetched', 'computed', 'resultPublished']) expect(delivered[stage]).toBeGreaterThanOrEqual(0);
    expect(lines.find((l) => l.event === 'delivered')).toMatchObject({ status: 'ok', deliveries: 1 });
  });

  it('logs a refusal at admission and a failed algorithm with their codes', async () => {
    const run = synthesizeXaRun({ seed: 12, rows: 32, columns: 32, frames: 4, bitsStored: 8, patient: PATIENT });
    const unknown = await device.prepare(s3, bucket, run.bytes, 'no-such-algorithm@1', '1.2.826.0.1.3680043.10.1.12');
    await device.publishRaw(encodePayload(unknown));
    const failing = await device.prepare(s3, bucket, run.bytes, 'throws@1', '1.2.826.0.1.3680043.10.1.13');
    await device.publishRaw(encodePayload(failing));
    await device.next((r) => r.requestId === unknown.id);
    await device.next((r) => r.requestId === failing.id);
    await until(() => eventsOf(log.lines, failing.id).includes('delivered'), 'the failed request delivered');

    expect(eventsOf(log.lines, unknown.id)).toEqual(['refused']);
    expect(log.lines.find((l) => l.requestId === unknown.id)).toMatchObject({ level: 'warn', code: 'UNKNOWN_ALGORITHM', tenant: 'acme', device: 'cath-lab-1', algorithm: 'no-such-algorithm@1' });
    expect(eventsOf(log.lines, failing.id)).toEqual(['admitted', 'leased', 'failed', 'delivered']);
    expect(log.lines.find((l) => l.requestId === failing.id && l.event === 'failed')).toMatchObject({ level: 'warn', code: 'ALGORITHM_FAILED', algorithm: 'throws@1.0.0' });
    expect(log.lines.find((l) => l.requestId === failing.id && l.event === 'delivered')).toMatchObject({ status: 'failed', code: 'ALGORITHM_FAILED' });
  });

  it('writes neither the patient name or id nor any secret or token, even for a refused login', async () => {
    const wrong = 'wrong-password-that-must-not-be-logged';
    const refused = await mqtt
      .connectAsync(platform.mqttUrl, { protocolVersion: 4, clientId: 'acme.cath-lab-1', username: deviceUsername({ tenant: 'acme', device: 'cath-lab-1' }), password: wrong, reconnectPeriod: 0 })
      .then(
        async (client) => {
          await client.endAsync();
          return false;
        },
        () => true,
      );
    expect(refused).toBe(true);
    await until(() => log.lines.some((l) => l.type === 'security'), 'the security line');
    const text = log.text();
    for (const secret of [PATIENT.name, PATIENT.id, 'Doe^Jane', SECRET, OPS_TOKEN, wrong, deviceToken(SECRET, { tenant: 'acme', device: 'cath-lab-1' })]) {
      expect(text).not.toContain(secret);
    }
    expect(log.lines.filter((l) => l.type === 'security')[0]).toMatchObject({ level: 'warn', event: 'login_refused' });
  });
});

describe('structured logs: retries and dead letters', () => {
  it('logs retried for each retryable failure, then dead-lettered and the delivered answer', async () => {
    const tmp = await tempDir('logging-retry');
    const log = capturedLogger('info', 'worker');
    const dbPath = path.join(tmp.dir, 'platform.db');
    const queue = new SqliteWorkQueue({ path: dbPath, maxDeliveries: 2 });
    const ledger = new SqliteRequestLedger({ path: dbPath });
    const published: ResultV1[] = [];
    const bytes = Buffer.from('not read by the failing executor');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const uri = `s3://arteria-runs/acme/cath-lab-1/1.2.3/${sha256}.dcm`;
    const now = epochNow();
    const request: RequestV1 = {
      v: 1,
      id: requestId({ tenant: 'acme', device: 'cath-lab-1', instanceUid: '1.2.3', sha256, algorithm: 'echo@1', inputUris: [uri] }),
      tenant: 'acme',
      device: 'cath-lab-1',
      algorithm: 'echo@1',
      instanceUid: '1.2.3',
      inputs: [{ uri, size: bytes.byteLength, sha256, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { published: now, enqueued: now },
    };
    const algorithm = { name: 'echo', version: '1.0.0', digest: `sha256:${'0'.repeat(64)}` };
    const worker = new Worker(
      {
        queue,
        ledger,
        inputs: {
          fetch: () => Promise.resolve(bytes),
          stream: async function* () {
            yield await Promise.resolve(bytes);
          },
        },
        executor: { execute: () => Promise.reject(new ArteriaError('INFERENCE_UNAVAILABLE', 'the inference server answered 503')) },
        results: { publish: (result: ResultV1) => Promise.resolve(void published.push(result)), close: () => Promise.resolve() },
        logger: log.logger,
      },
      { visibilityMs: 5_000, leaseWaitMs: 50, maxInputBytes: 1024, maxDeliveries: 2 },
    );
    try {
      await ledger.recordAccepted({ requestId: request.id, tenant: request.tenant, device: request.device, algorithm: request.algorithm, acceptedAt: now, request });
      await queue.enqueue(encodeTask({ v: 1, request, algorithm }), { dedupeId: request.id });
      worker.start();
      await until(() => eventsOf(log.lines, request.id).includes('delivered'), 'the dead-lettered request delivered');
    } finally {
      await worker.drain();
      await ledger.close();
      await queue.close();
      await tmp.remove();
    }
    expect(eventsOf(log.lines, request.id)).toEqual(['leased', 'retried', 'leased', 'dead-lettered', 'delivered']);
    const lines = log.lines.filter((l) => l.requestId === request.id);
    expect(lines[1]).toMatchObject({ level: 'warn', code: 'INFERENCE_UNAVAILABLE', deliveries: 1, algorithm: 'echo@1.0.0' });
    expect(lines[3]).toMatchObject({ level: 'error', code: 'DEAD_LETTERED', deliveries: 2 });
    expect(String(lines[3]?.reason)).toContain('INFERENCE_UNAVAILABLE');
    expect(published.map((r) => r.error?.code)).toEqual(['DEAD_LETTERED']);
  });
});

describe('LOG_LEVEL filters', () => {
  it('warn keeps refusals, failures, retries and dead letters and drops the happy path', () => {
    const log = capturedLogger('warn');
    const who = { requestId: 'r1', tenant: 'acme', device: 'd1', algorithm: 'echo@1.0.0' };
    for (const event of ['admitted', 'refused', 'leased', 'computed', 'delivered', 'failed', 'retried', 'dead-lettered'] as const) logRequestEvent(log.logger, event, who);
    log.logger.info('connected');
    expect(log.lines.map((l) => l.event)).toEqual(['refused', 'failed', 'retried', 'dead-lettered']);
  });

  it('silent writes nothing; debug writes what info does and more', () => {
    const silent = capturedLogger('silent');
    logRequestEvent(silent.logger, 'dead-lettered', { requestId: 'r1', tenant: 'acme', device: 'd1' });
    silent.logger.error('broken');
    expect(silent.lines).toEqual([]);
    const debug = capturedLogger('debug');
    debug.logger.debug('detail');
    logRequestEvent(debug.logger, 'admitted', { requestId: 'r1', tenant: 'acme', device: 'd1' });
    expect(debug.lines.map((l) => l.msg)).toEqual(['detail', 'request admitted']);
  });

  it('redacts credential fields that reach a log call', () => {
    const log = capturedLogger('info');
    log.logger.info({ token: 'tok-123456', s3: { secretAccessKey: 'sk-123456' }, password: 'pw-123456' }, 'connecting');
    expect(log.text()).not.toMatch(/tok-123456|sk-123456|pw-123456/);
    expect(log.lines[0]).toMatchObject({ token: '[redacted]', password: '[redacted]', s3: { secretAccessKey: '[redacted]' } });
  });
});
