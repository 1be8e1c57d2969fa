import { synthesizeXaRun } from '@arteria/dicom';
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import mqtt, { type MqttClient } from 'mqtt';
import { PartialResultV1, ProbeAnswerV1, ResultV1, decodePayload, deviceToken, deviceTopic, deviceUsername, encodePayload, epochNow, requestId, type RequestV1 } from '@arteria/protocol';

/**
 * A bare MQTT device for platform tests: speaks the protocol by hand, so tests can send
 * exactly the malformed or hostile messages a real gateway never would.
 */
export class TestDevice {
  readonly results: ResultV1[] = [];
  /** Partial results of segmented runs, in the order they came. */
  readonly partials: PartialResultV1[] = [];
  readonly #waiters: { match: (r: ResultV1) => boolean; resolve: (r: ResultV1) => void }[] = [];
  readonly #probes = new Map<string, (answer: ProbeAnswerV1) => void>();

  private constructor(
    readonly client: MqttClient,
    readonly tenant: string,
    readonly device: string,
  ) {
    client.on('message', (_topic, payload) => {
      if (payload.includes('"kind":"probe-answer"')) {
        const answer = decodePayload(ProbeAnswerV1, payload);
        this.#probes.get(answer.probeId)?.(answer);
        return;
      }
      if (payload.includes('"kind":"partial"')) {
        this.partials.push(decodePayload(PartialResultV1, payload));
        return;
      }
      const result = decodePayload(ResultV1, payload);
      this.results.push(result);
      for (const waiter of [...this.#waiters]) {
        if (waiter.match(result)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(result);
        }
      }
    });
  }

  /** Connects as the device (MQTT 3.1.1 as gateways speak, or 5 as a cluster broker allows) and subscribes to its results. */
  /** `token`: the password (default: an expiring token from `secret`; a broker with a static password file holds a legacy one). */
  static async connect(url: string, secret: string, tenant: string, device: string, options: { protocolVersion?: 4 | 5; token?: string } = {}): Promise<TestDevice> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: options.protocolVersion ?? 4,
      clientId: `${tenant}.${device}`,
      username: deviceUsername({ tenant, device }),
      password: options.token ?? deviceToken(secret, { tenant, device }),
      clean: true,
      reconnectPeriod: 0,
    });
    const testDevice = new TestDevice(client, tenant, device);
    await client.subscribeAsync(deviceTopic({ tenant, device }, 'results'), { qos: 1 });
    return testDevice;
  }

  /** Resolves with the first result (already received or still to come) that matches. */
  next(match: (r: ResultV1) => boolean): Promise<ResultV1> {
    const seen = this.results.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  /** Sends a dry-run admission probe and resolves with the platform's answer. */
  async probe(algorithms: string[], id = `probe-${Math.random().toString(36).slice(2)}`, options: { capabilities?: true } = {}): Promise<ProbeAnswerV1> {
    const answered = new Promise<ProbeAnswerV1>((resolve) => this.#probes.set(id, resolve));
    await this.publishRaw(encodePayload({ v: 1, kind: 'probe', id, algorithms, ...options }));
    return answered;
  }

  async publishRaw(payload: Buffer | string, topic = deviceTopic(this, 'requests')): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  /** Uploads bytes under the device's prefix and builds a valid request for them. */
  async prepare(s3: S3Client, bucket: string, bytes: Uint8Array, algorithm: string, instanceUid = '1.2.826.0.1.3680043.10.1.1'): Promise<RequestV1> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const key = `${this.tenant}/${this.device}/${instanceUid}/${sha256}.dcm`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const now = epochNow();
    return {
      v: 1,
      id: requestId({ tenant: this.tenant, device: this.device, instanceUid, sha256, algorithm, inputUris: [`s3://${bucket}/${key}`] }),
      tenant: this.tenant,
      device: this.device,
      algorithm,
      instanceUid,
      inputs: [{ uri: `s3://${bucket}/${key}`, size: bytes.byteLength, sha256, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { acquired: now, uploaded: now, published: now },
    };
  }

  /** Uploads a synthetic run of `frames` frames and publishes its request. */
  async send(s3: S3Client, bucket: string, algorithm: string, frames: number, seed: number): Promise<RequestV1> {
    const { bytes } = synthesizeXaRun({ seed, rows: 32, columns: 32, frames, bitsStored: 8 });
    const request = await this.prepare(s3, bucket, bytes, algorithm, `1.2.826.0.1.3680043.10.7.${seed}`);
    await this.publishRaw(encodePayload(request));
    return request;
  }

  /** Publishes again the requests that have no result yet, as a gateway's resend does. */
  async resendUnanswered(requests: readonly RequestV1[]): Promise<number> {
    const unanswered = requests.filter((r) => !this.results.some((res) => res.requestId === r.id));
    for (const request of unanswered) await this.publishRaw(encodePayload(request));
    return unanswered.length;
  }

  /**
   * Resends the unanswered requests every `everyMs` until each has a result, as a gateway
   * does (one resend can meet an ingest whose death the broker has not noticed yet).
   */
  async resendUntilAnswered(requests: readonly RequestV1[], everyMs = 5_000, timeoutMs = 25_000): Promise<ResultV1[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      await this.resendUnanswered(requests);
      try {
        return await this.waitFor(requests.map((r) => r.id), Math.max(0, Math.min(everyMs, until - Date.now())));
      } catch (err) {
        if (Date.now() >= until) throw err;
      }
    }
  }

  /** Resolves once a result has arrived for every id. */
  async waitFor(ids: readonly string[], timeoutMs = 25_000): Promise<ResultV1[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = ids.map((id) => this.results.find((r) => r.requestId === id));
      if (found.every((r) => r !== undefined)) return found;
      if (Date.now() > until) throw new Error(`results missing for ${ids.filter((_, i) => found[i] === undefined).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
