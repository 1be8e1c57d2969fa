// Upload grants over the device's own MQTT topics, against the embedded platform (real
// broker, ingest and store): what a device may get signed, and a whole multipart run
// sent by a gateway that holds no store key.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { Gateway } from '@arteria/gateway';
import { EmbeddedPlatform } from '@arteria/platform';
import { createS3Client, parseS3Uri } from '@arteria/engine-s3';
import { GrantAnswerV1, deviceToken, deviceTopic, deviceUsername, encodePayload, type GrantRequestV1 } from '@arteria/protocol';

const SECRET = 'grants-tenant-secret-0123456789';
const algorithmDir = path.dirname(fileURLToPath(import.meta.resolve('@arteria/contrast-injection/manifest.json')));

/** A device speaking MQTT by hand: asks for grants and reads the answers on its results topic. */
async function rawDevice(platform: EmbeddedPlatform, device: string): Promise<{ ask(request: Omit<GrantRequestV1, 'v' | 'kind'>): Promise<GrantAnswerV1>; close(): Promise<void> }> {
  const address = { tenant: 'acme', device };
  const client: MqttClient = await connectAsync(platform.mqttUrl, { protocolVersion: 4, clientId: `acme.${device}`, clean: true, username: deviceUsername(address), password: deviceToken(SECRET, address) });
  const waiting = new Map<string, (answer: GrantAnswerV1) => void>();
  client.on('message', (_topic, payload) => {
    const answer = GrantAnswerV1.safeParse(JSON.parse(payload.toString('utf8')));
    if (answer.success) waiting.get(answer.data.grantId)?.(answer.data);
  });
  await client.subscribeAsync(deviceTopic(address, 'results'), { qos: 1 });
  return {
    async ask(request) {
      const answered = new Promise<GrantAnswerV1>((resolve) => waiting.set(request.id, resolve));
      await client.publishAsync(deviceTopic(address, 'requests'), encodePayload({ v: 1, kind: 'grant', ...request }), { qos: 1 });
      return answered;
    },
    close: () => client.endAsync(),
  };
}

describe('upload grants on the embedded platform', () => {
  let dir: string;
  let platform: EmbeddedPlatform;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-grants-'));
    platform = await EmbeddedPlatform.start({ mqttPort: 0, s3Port: 0, httpPort: 0, dataDir: path.join(dir, 'platform'), tenants: { acme: SECRET, hosp2: `${SECRET}-2` }, algorithmDirs: [algorithmDir] });
  });
  afterAll(async () => {
    await platform.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('signs a device\'s own new key only; another device\'s or tenant\'s prefix is NOT_AUTHORIZED', async () => {
    const device = await rawDevice(platform, 'dev-a');
    try {
      for (const key of ['acme/dev-b/run/x.dcm', 'hosp2/icu-1/run/x.dcm', 'acme/dev-a/../dev-b/x.dcm']) {
        const refused = await device.ask({ id: `r${key.length}`, key, operations: ['put', 'create', 'head'] });
        expect(refused.error?.code, key).toBe('NOT_AUTHORIZED');
        expect(refused.urls).toEqual({});
      }
      const granted = await device.ask({ id: 'own', key: 'acme/dev-a/run/1.dcm', operations: ['put'] });
      expect(granted.error).toBeUndefined();
      expect(granted.expiresAt).toBeGreaterThan(Date.now());
      const put = granted.urls.put ?? '';
      expect(new URL(put).pathname).toBe(`/${platform.options.bucket}/acme/dev-a/run/1.dcm`);
      expect((await fetch(put, { method: 'PUT', body: 'bytes' })).status).toBe(200);
      // Written once: a second write grant for the stored key is refused.
      expect((await device.ask({ id: 'again', key: 'acme/dev-a/run/1.dcm', operations: ['put'] })).error?.code).toBe('OBJECT_EXISTS');
      // The store itself answers nobody without a signature.
      expect((await fetch(`${platform.s3Endpoint}/${platform.options.bucket}?list-type=2`)).status).toBe(403);
    } finally {
      await device.close();
    }
  });

  it('a gateway without store keys sends a multipart run and gets its result', async () => {
    const run = synthesizeXaRun({ seed: 7, rows: 512, columns: 512, frames: 48, frameRateHz: 15, bitsStored: 8, contrast: { startFrame: 10, peakFrame: 20, endFrame: 40 } });
    const file = path.join(dir, 'big.dcm');
    await writeFile(file, run.bytes);
    const gateway = new Gateway({
      tenant: 'acme',
      device: 'cath-lab-9',
      token: deviceToken(SECRET, { tenant: 'acme', device: 'cath-lab-9' }),
      mqttUrl: platform.mqttUrl,
      s3: { endpoint: platform.s3Endpoint, bucket: platform.options.bucket },
      outboxPath: path.join(dir, 'cath-lab-9.db'),
      partSizeBytes: 5 * 1024 * 1024,
      deidentification: { enabled: false },
    });
    const parts = new Set<number>();
    gateway.on('progress', ({ part }) => part !== undefined && parts.add(part));
    await gateway.start();
    try {
      const result = await gateway.send(file);
      expect(result.status).toBe('ok');
      expect(parts.size).toBe(Math.ceil(run.bytes.byteLength / (5 * 1024 * 1024)));
      expect(parts.size).toBeGreaterThan(1);
      const entry = await platform.ledger.get(result.requestId);
      const input = entry?.state === 'completed' ? entry.request?.inputs[0] : undefined;
      const s3 = createS3Client({ endpoint: platform.s3Endpoint, ...platform.storeCredentials, forcePathStyle: true });
      const { bucket, key } = parseS3Uri(input?.uri ?? '');
      const stored = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToByteArray();
      s3.destroy();
      expect(createHash('sha256').update(stored ?? new Uint8Array()).digest('hex')).toBe(createHash('sha256').update(run.bytes).digest('hex'));
    } finally {
      await gateway.close();
    }
  }, 120_000);
});
