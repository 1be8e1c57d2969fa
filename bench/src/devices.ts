import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import mqtt, { type MqttClient } from 'mqtt';
import { ResultV1, decodePayload, deviceToken, deviceTopic, deviceUsername, encodePayload, epochNow, requestId } from '@arteria/protocol';

export interface Received {
  result: ResultV1;
  receivedAt: number;
}

/** A load-generating device: its run is uploaded once; each request names it under a new instance UID. */
export class BenchDevice {
  readonly #pending = new Map<string, (r: Received) => void>();
  #object: { uri: string; size: number; sha256: string } | undefined;
  #counter = 0;

  private constructor(
    readonly client: MqttClient,
    readonly tenant: string,
    readonly device: string,
  ) {
    client.on('message', (_topic, payload) => {
      const receivedAt = epochNow();
      const result = decodePayload(ResultV1, payload);
      const resolve = this.#pending.get(result.requestId);
      if (resolve) {
        this.#pending.delete(result.requestId);
        resolve({ result, receivedAt });
      }
    });
  }

  static async connect(url: string, secret: string, tenant: string, device: string): Promise<BenchDevice> {
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
    return new BenchDevice(client, tenant, device);
  }

  async upload(s3: S3Client, bucket: string, bytes: Uint8Array): Promise<void> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const key = `${this.tenant}/${this.device}/bench/${sha256}.dcm`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    this.#object = { uri: `s3://${bucket}/${key}`, size: bytes.byteLength, sha256 };
  }

  /** Publishes a new request; resolves when its result arrives. */
  request(algorithm: string, runTag: string): Promise<Received> {
    const object = this.#object;
    if (!object) throw new Error('upload first');
    const instanceUid = `1.2.826.0.1.3680043.10.9.${runTag}.${++this.#counter}`;
    const id = requestId({ tenant: this.tenant, device: this.device, instanceUid, sha256: object.sha256, algorithm });
    const now = epochNow();
    const payload = encodePayload({
      v: 1,
      id,
      tenant: this.tenant,
      device: this.device,
      algorithm,
      instanceUid,
      inputs: [{ ...object, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { acquired: now, uploaded: now, published: now },
    });
    const received = new Promise<Received>((resolve) => this.#pending.set(id, resolve));
    this.client.publish(deviceTopic(this, 'requests'), payload, { qos: 1 });
    return received;
  }

  get pending(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
