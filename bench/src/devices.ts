import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import mqtt, { type MqttClient } from 'mqtt';
import { ResultV1, decodePayload, deviceToken, deviceTopic, deviceUsername, encodePayload, epochNow, requestId, type RequestV1 } from '@arteria/protocol';

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

  /** Uploads a run once; `request()` then names it under a new instance UID each time. */
  async upload(s3: S3Client, bucket: string, bytes: Uint8Array): Promise<void> {
    const request = await this.prepare(s3, bucket, bytes, 'unused@1', 'bench');
    const [input] = request.inputs;
    if (input) this.#object = { uri: input.uri, size: input.size, sha256: input.sha256 };
  }

  /** Uploads a run under its instance UID (the gateway's job) and builds its request. */
  async prepare(s3: S3Client, bucket: string, bytes: Uint8Array, algorithm: string, instanceUid: string): Promise<RequestV1> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const key = `${this.tenant}/${this.device}/${instanceUid}/${sha256}.dcm`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    return this.#build({ uri: `s3://${bucket}/${key}`, size: bytes.byteLength, sha256 }, algorithm, instanceUid);
  }

  /** Publishes a new request for the uploaded run, without waiting; resolves when its result arrives. */
  request(algorithm: string, runTag: string): Promise<Received> {
    const object = this.#object;
    if (!object) throw new Error('upload first');
    const request = this.#build(object, algorithm, `1.2.826.0.1.3680043.10.9.${runTag}.${++this.#counter}`);
    const received = this.#await(request.id);
    this.client.publish(deviceTopic(this, 'requests'), encodePayload(request), { qos: 1 });
    return received;
  }

  /** Publishes a prepared request (stamping `published` now); resolves with its result and the ms to it. */
  async send(request: RequestV1): Promise<{ result: ResultV1; latencyMs: number }> {
    const received = this.#await(request.id);
    const published = epochNow();
    await this.client.publishAsync(deviceTopic(this, 'requests'), encodePayload({ ...request, timings: { ...request.timings, published } }), { qos: 1 });
    const { result, receivedAt } = await received;
    return { result, latencyMs: receivedAt - published };
  }

  #await(id: string): Promise<Received> {
    return new Promise<Received>((resolve) => this.#pending.set(id, resolve));
  }

  #build(object: { uri: string; size: number; sha256: string }, algorithm: string, instanceUid: string): RequestV1 {
    const now = epochNow();
    return {
      v: 1,
      id: requestId({ tenant: this.tenant, device: this.device, instanceUid, sha256: object.sha256, algorithm, inputUris: [object.uri] }),
      tenant: this.tenant,
      device: this.device,
      algorithm,
      instanceUid,
      inputs: [{ ...object, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { acquired: now, uploaded: now, published: now },
    };
  }

  get pending(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
