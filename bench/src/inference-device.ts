/** A bare device for the inference benchmark: uploads runs, sends requests, collects results. */
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import mqtt, { type MqttClient } from 'mqtt';
import { ResultV1, decodePayload, deviceToken, deviceTopic, deviceUsername, epochNow, requestId, type RequestV1 } from '@arteria/protocol';

export class InferenceBenchDevice {
  readonly #waiters = new Map<string, (result: ResultV1, receivedMs: number) => void>();

  private constructor(
    readonly client: MqttClient,
    readonly tenant: string,
    readonly device: string,
  ) {
    client.on('message', (_topic, payload) => {
      const receivedMs = performance.now();
      const result = decodePayload(ResultV1, payload);
      this.#waiters.get(result.requestId)?.(result, receivedMs);
      this.#waiters.delete(result.requestId);
    });
  }

  static async connect(url: string, secret: string, tenant: string, device: string): Promise<InferenceBenchDevice> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 4,
      clientId: `${tenant}.${device}`,
      username: deviceUsername({ tenant, device }),
      password: deviceToken(secret, { tenant, device }),
      clean: true,
      reconnectPeriod: 0,
    });
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    await client.subscribeAsync(deviceTopic({ tenant, device }, 'results'), { qos: 1 });
    return new InferenceBenchDevice(client, tenant, device);
  }

  /** Uploads the run (the gateway's job, before the request) and returns the request to send. */
  async upload(s3: S3Client, bucket: string, bytes: Uint8Array, algorithm: string, instanceUid: string): Promise<RequestV1> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const key = `${this.tenant}/${this.device}/${instanceUid}/${sha256}.dcm`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const now = epochNow();
    return {
      v: 1,
      id: requestId({ tenant: this.tenant, device: this.device, instanceUid, sha256, algorithm }),
      tenant: this.tenant,
      device: this.device,
      algorithm,
      instanceUid,
      inputs: [{ uri: `s3://${bucket}/${key}`, size: bytes.byteLength, sha256, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { acquired: now, uploaded: now, published: now },
    };
  }

  /** Publishes the request; resolves with the result and the ms from publish to receipt. */
  async send(request: RequestV1): Promise<{ result: ResultV1; latencyMs: number }> {
    const received = new Promise<{ result: ResultV1; receivedMs: number }>((resolve) => {
      this.#waiters.set(request.id, (result, receivedMs) => resolve({ result, receivedMs }));
    });
    const sentMs = performance.now();
    await this.client.publishAsync(deviceTopic(this, 'requests'), JSON.stringify({ ...request, timings: { ...request.timings, published: epochNow() } }), { qos: 1 });
    const { result, receivedMs } = await received;
    return { result, latencyMs: receivedMs - sentMs };
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
