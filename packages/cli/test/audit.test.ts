import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { EmbeddedPlatform } from '@arteria/platform';
import { createS3Client } from '@arteria/engine-s3';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { RequestV1, ResultV1, decodePayload, deviceToken, deviceTopic, deviceUsername, encodePayload, requestId } from '@arteria/protocol';
import { createHash } from 'node:crypto';
import { CLI } from './support/cluster.js';

const run = promisify(execFile);
const SECRET = 'audit-tenant-secret-0123456789';

/** The CLI's exit code and output, without throwing on exit 1. */
async function arteria(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ARTERIA_CONFIG: '' } });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/**
 * The forged-ledger attack end to end: a device's result is changed in the SQLite file
 * while the platform runs; the device's resend must not get the forged result as `ok`,
 * and `arteria audit verify` must name the request.
 */
describe('arteria audit against a running embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;
  let device: mqtt.MqttClient;
  const results: ResultV1[] = [];
  let request: RequestV1;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-audit-cli-'));
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: dir, workers: 1, tenants: { acme: SECRET }, algorithmDirs: [path.resolve('packages/testing/fixtures/algorithms/echo')] });
    device = await mqtt.connectAsync(platform.mqttUrl, { clientId: 'acme.cl-1', protocolVersion: 4, username: deviceUsername({ tenant: 'acme', device: 'cl-1' }), password: deviceToken(SECRET, { tenant: 'acme', device: 'cl-1' }), clean: true, reconnectPeriod: 0 });
    device.on('message', (_topic, payload) => results.push(decodePayload(ResultV1, payload)));
    await device.subscribeAsync(deviceTopic({ tenant: 'acme', device: 'cl-1' }, 'results'), { qos: 1 });
    const bytes = synthesizeXaRun({ seed: 3, rows: 32, columns: 32, frames: 4, bitsStored: 8 }).bytes;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const instanceUid = '1.2.826.0.1.3680043.10.9.1';
    const key = `acme/cl-1/${instanceUid}/run.dcm`;
    const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
    await s3.send(new PutObjectCommand({ Bucket: 'arteria-runs', Key: key, Body: bytes }));
    s3.destroy();
    const algorithm = 'echo@^1';
    request = RequestV1.parse({
      v: 1,
      id: requestId({ tenant: 'acme', device: 'cl-1', instanceUid, sha256, algorithm, inputUris: [`s3://arteria-runs/${key}`] }),
      tenant: 'acme',
      device: 'cl-1',
      algorithm,
      instanceUid,
      inputs: [{ uri: `s3://arteria-runs/${key}`, size: bytes.length, sha256, contentType: 'application/dicom' }],
      timings: { uploaded: Date.now() },
    });
  });
  afterAll(async () => {
    await device?.endAsync();
    await platform?.close();
    await rm(dir, { recursive: true, force: true });
  });

  // Up to 60 s (the platform runs the algorithm; a busy machine may take more than a few seconds);
  // what has arrived by then is asserted by the caller.
  const resultsFor = async (count: number): Promise<ResultV1[]> => {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && results.filter((r) => r.requestId === request.id).length < count) await new Promise((r) => setTimeout(r, 25));
    return results.filter((r) => r.requestId === request.id);
  };

  it('a result carries its record hash; verify passes and show prints its provenance', async () => {
    await device.publishAsync(deviceTopic({ tenant: 'acme', device: 'cl-1' }, 'requests'), encodePayload(request), { qos: 1 });
    const [first] = await resultsFor(1);
    expect(first?.status).toBe('ok');
    expect(first?.recordHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const verify = await arteria('audit', 'verify', '--data-dir', dir);
    expect(verify.out).toMatch(/^ok: 2 records/);
    expect(verify.code).toBe(0);
    const show = await arteria('audit', 'show', request.id, '--data-dir', dir);
    expect(show.code).toBe(0);
    expect(show.out).toContain('device    acme/cl-1');
    expect(show.out).toContain(`sha256:${request.inputs[0]!.sha256}`);
    expect(show.out).toMatch(new RegExp(`algorithm echo 1\\.0\\.0  ${first!.algorithm!.digest}`));
    expect(show.out).toMatch(/worker {4}\S+:\d+/);
    expect(show.out).toContain(`result    ${first!.recordHash!}`);
    expect(show.out).toMatch(/computed\s+\d{4}-/);
  }, 120_000);

  it('a forged result row is not replayed as ok, and verify names the request', async () => {
    const db = new Database(path.join(dir, 'platform.db'));
    try {
      const row = db.prepare<[string], { result: string }>('SELECT result FROM ledger_requests WHERE request_id = ?').get(request.id)!;
      const forged = { ...(JSON.parse(row.result) as ResultV1), output: { frames: 999 } };
      db.prepare('UPDATE ledger_requests SET result = ? WHERE request_id = ?').run(JSON.stringify(forged), request.id);
    } finally {
      db.close();
    }
    await device.publishAsync(deviceTopic({ tenant: 'acme', device: 'cl-1' }, 'requests'), encodePayload(request), { qos: 1 });
    const copies = await resultsFor(2);
    expect(copies[1]).toMatchObject({ status: 'failed', error: { code: 'LEDGER_TAMPERED' } });
    expect(copies[1]?.output).toBeUndefined();
    const verify = await arteria('audit', 'verify', '--data-dir', dir);
    expect(verify.code).toBe(1);
    expect(verify.out).toMatch(new RegExp(`modified: request ${request.id}: its completed entry differs from what record 2`));
    const show = await arteria('audit', 'show', request.id, '--data-dir', dir);
    expect(show.code).toBe(1);
    expect(show.out).toContain('ledger    TAMPERED');
  }, 120_000);
});
