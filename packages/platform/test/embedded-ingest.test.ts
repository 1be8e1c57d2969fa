import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { MAX_PAYLOAD_BYTES, deviceTopic, encodePayload, requestId, type RequestV1 } from '@arteria/protocol';
import { encodeTask } from '@arteria/ports';
import { parseS3Uri } from '@arteria/engine-s3';
import { type EmbeddedPlatform } from '../src/embedded/embedded-platform.js';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TestDevice } from '@arteria/testing';
import { SECRET, startPlatformWithDevice } from './support/platform.js';

/** The request naming another object, with the id that address gives it. */
function withUri(request: RequestV1, uri: string): RequestV1 {
  const inputs = [{ ...request.inputs[0]!, uri }];
  return { ...request, inputs, id: requestId({ ...request, sha256: inputs[0]!.sha256, inputUris: [uri] }) };
}

describe('embedded platform: admission and bad input', () => {
  let platform: EmbeddedPlatform;
  let s3: S3Client;
  let device: TestDevice;
  let cleanup: () => Promise<void>;
  const bucket = 'arteria-runs';
  const run = synthesizeXaRun({ seed: 7, rows: 64, columns: 64, frames: 12, bitsStored: 8 });

  beforeAll(async () => {
    ({ platform, s3, device, close: cleanup } = await startPlatformWithDevice('ingest'));
  });
  afterAll(async () => cleanup());

  it('runs a valid request and names the exact algorithm digest and every platform stage', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1');
    await device.publishRaw(encodePayload(request));
    const result = await device.next((r) => r.requestId === request.id);
    expect(result.status).toBe('ok');
    expect(result.algorithm?.digest).toBe(platform.registry.resolve('echo@1').digest);
    expect(result.algorithm?.version).toBe('1.0.0');
    expect(result.output).toMatchObject({ frames: 12, rows: 64, columns: 64, modality: 'XA' });
    const t = result.timings;
    const order = [t.published, t.enqueued, t.leased, t.fetched, t.computed, t.resultPublished];
    expect(order.every((x) => typeof x === 'number')).toBe(true);
    expect([...order].sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(order);
  });

  it('answers a resend of a completed request from the ledger, without running it again', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@1.x');
    await device.publishRaw(encodePayload(request));
    const first = await device.next((r) => r.requestId === request.id);
    const before = (await platform.ledger.counts()).completed;
    await device.publishRaw(encodePayload(request));
    await waitFor(() => device.results.filter((r) => r.requestId === request.id).length === 2);
    const copies = device.results.filter((r) => r.requestId === request.id);
    expect(copies[1]).toEqual(first);
    expect((await platform.ledger.counts()).completed).toBe(before);
  });

  it('rejects invalid JSON with INVALID_JSON', async () => {
    await device.publishRaw('{"v": 1, "id": ');
    const result = await device.next((r) => r.error?.code === 'INVALID_JSON');
    expect(result.status).toBe('rejected');
    expect(result.requestId).toBe('unknown');
  });

  it('rejects a schema violation with INVALID_REQUEST naming the field', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.100');
    await device.publishRaw(JSON.stringify({ ...request, inputs: [{ ...request.inputs[0], size: -1 }] }));
    const result = await device.next((r) => r.requestId === request.id && r.error?.code === 'INVALID_REQUEST');
    expect(result.error?.message).toMatch(/inputs\.0\.size/);
  });

  it('rejects a forged id with INVALID_REQUEST', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.101');
    const forged = { ...request, id: `r${'0'.repeat(31)}` };
    await device.publishRaw(encodePayload(forged));
    const result = await device.next((r) => r.requestId === forged.id);
    expect(result.error?.code).toBe('INVALID_REQUEST');
  });

  it('rejects an unknown algorithm with UNKNOWN_ALGORITHM', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'no-such-algorithm@^1');
    await device.publishRaw(encodePayload(request));
    const result = await device.next((r) => r.requestId === request.id);
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'UNKNOWN_ALGORITHM' } });
  });

  it('rejects a version range nothing satisfies with UNKNOWN_ALGORITHM', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^2');
    await device.publishRaw(encodePayload(request));
    const result = await device.next((r) => r.requestId === request.id);
    expect(result.error?.code).toBe('UNKNOWN_ALGORITHM');
  });

  it('rejects a payload over 128 KB with PAYLOAD_TOO_LARGE', async () => {
    await device.publishRaw(Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20));
    const result = await device.next((r) => r.error?.code === 'PAYLOAD_TOO_LARGE');
    expect(result.status).toBe('rejected');
  });

  it('refuses a request published under another device, answering the sender only', async () => {
    const victim = await TestDevice.connect(platform.mqttUrl, SECRET, 'acme', 'cath-lab-2');
    try {
      const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.102');
      await device.publishRaw(encodePayload(request), deviceTopic({ tenant: 'acme', device: 'cath-lab-2' }, 'requests'));
      const result = await device.next((r) => r.error?.code === 'NOT_AUTHORIZED');
      expect(result).toMatchObject({ status: 'rejected', tenant: 'acme', device: 'cath-lab-1' });
      expect(victim.results).toEqual([]);
    } finally {
      await victim.close();
    }
  });

  it('refuses inputs outside the device\'s own storage prefix', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.103');
    const stolen = { ...request, inputs: [{ ...request.inputs[0]!, uri: `s3://${bucket}/acme/cath-lab-2/x.dcm` }] };
    await device.publishRaw(encodePayload(stolen));
    const result = await device.next((r) => r.requestId === request.id && r.status === 'rejected');
    expect(result.error?.code).toBe('NOT_AUTHORIZED');
  });

  it('a worker refuses a queued task naming another device\'s object, even past admission', async () => {
    // A copy of another device's request, put straight on the queue as if admission had been bypassed.
    const theirs = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.106');
    const foreign = `s3://${bucket}/acme/cath-lab-2/1.2.3.106/x.dcm`;
    const { key } = parseS3Uri(foreign);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: run.bytes }));
    const request = { ...theirs, inputs: [{ ...theirs.inputs[0]!, uri: foreign }] };
    await platform.queue.enqueue(encodeTask({ v: 1, request, algorithm: platform.registry.resolve('echo@1').ref }), { dedupeId: request.id });
    const result = await device.next((r) => r.requestId === request.id);
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'NOT_AUTHORIZED' } });
    expect(result.output).toBeUndefined();
  });

  it('gives a request for the same bytes at another address another id', async () => {
    const first = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.107');
    const moved = { ...first, inputs: [{ ...first.inputs[0]!, uri: `${first.inputs[0]!.uri}.copy` }] };
    expect(withUri(first, moved.inputs[0]!.uri).id).not.toBe(first.id);
    // Same id, other URI: refused, never answered from the first request's ledger row.
    await device.publishRaw(encodePayload(moved));
    const result = await device.next((r) => r.requestId === first.id && r.error?.code === 'INVALID_REQUEST');
    expect(result.status).toBe('rejected');
  });

  it('fails an admitted request whose object is missing or altered, with a typed code', async () => {
    const missing = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.104');
    const gone = withUri(missing, `${missing.inputs[0]!.uri}.gone`);
    await device.publishRaw(encodePayload(gone));
    expect((await device.next((r) => r.requestId === gone.id)).error?.code).toBe('INPUT_NOT_FOUND');

    const altered = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.105');
    // The stored object changes after the request was made: the worker must notice.
    const other = synthesizeXaRun({ seed: 8, rows: 64, columns: 64, frames: 12, bitsStored: 8 });
    const { bucket: b, key } = parseS3Uri(altered.inputs[0]!.uri);
    await s3.send(new PutObjectCommand({ Bucket: b, Key: key, Body: other.bytes }));
    await device.publishRaw(encodePayload(altered));
    const result = await device.next((r) => r.requestId === altered.id);
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'CHECKSUM_MISMATCH' } });
  });

  it('denies subscribing to another device\'s results and refuses bad credentials', async () => {
    await expect(device.client.subscribeAsync(deviceTopic({ tenant: 'acme', device: 'cath-lab-2' }, 'results'), { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(
      mqtt.connectAsync(platform.mqttUrl, { protocolVersion: 4, username: 'acme/cath-lab-9', password: 'wrong', reconnectPeriod: 0, connectTimeout: 2000 }),
    ).rejects.toThrow();
  });

  it('keeps working after all of the above', async () => {
    const request = await device.prepare(s3, bucket, run.bytes, 'echo@^1', '1.2.3.199');
    await device.publishRaw(encodePayload(request));
    expect((await device.next((r) => r.requestId === request.id)).status).toBe('ok');
    const status = await platform.status();
    expect(status.state).toBe('running');
    expect(status.queue.deadLettered).toBe(0);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
