import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import mqtt, { type MqttClient } from 'mqtt';
import { synthesizeXaRun } from '@arteria/dicom';
import { ResultV1, decodePayload, legacyDeviceToken, deviceTopic, deviceUsername, encodePayload, epochNow, requestId, type RequestV1 } from '@arteria/protocol';

export interface Delivery {
  /** Results that arrived for this request id (a plain MQTT subscriber counts every copy). */
  delivered: number;
  /**
   * Of those, copies the broker sent again with the DUP flag: its own retransmission of a
   * message it had already sent (after a crash its snapshot predates the device's PUBACK).
   * A broker never passes a publisher's DUP flag on, so a second publish by the platform
   * always arrives with DUP unset.
   */
  brokerResent: number;
  /** Epoch ms of each delivery. */
  deliveredAt: number[];
  /** Status (and error code) of each delivery. */
  statuses: string[];
  /** Epoch ms of the first publish and of the first result. */
  sentAt: number;
  firstResultAt?: number;
  status?: ResultV1['status'];
  /** The first result delivered, as it arrived. */
  first?: ResultV1;
  /** The run's SOP Instance UID: the nap fixture notes it at each computation (the cluster's tally file). */
  sopInstanceUid: string;
  resends: number;
  resentAt: number[];
}

export interface DeviceSetOptions {
  url: string;
  tenant: string;
  tenantSecret: string;
  devices: readonly string[];
  s3: S3Client;
  bucket: string;
  algorithm: string;
  /** An unanswered request is published again this often, and at once after a reconnect. */
  resendMs: number;
}

/**
 * Simulated devices as the gateway behaves on the wire: MQTT 3.1.1, a persistent session
 * per device, subscribe on every connect, resend every unanswered request on an interval
 * and after each reconnect. Each device's client is also the plain subscriber that counts
 * every result delivered, per request id.
 */
export class DeviceSet {
  readonly deliveries = new Map<string, Delivery>();
  readonly #clients = new Map<string, MqttClient>();
  readonly #pending = new Map<string, { device: string; payload: Buffer; lastSentAt: number }>();
  readonly #o: DeviceSetOptions;
  #timer: NodeJS.Timeout | undefined;
  #seed = 1;
  /** Results that match no request sent (or fail the schema). */
  unexpected = 0;

  private constructor(options: DeviceSetOptions) {
    this.#o = options;
  }

  static async connect(options: DeviceSetOptions): Promise<DeviceSet> {
    const set = new DeviceSet(options);
    await Promise.all(options.devices.map((device) => set.#connect(device)));
    set.#timer = setInterval(() => set.#resendDue(), Math.min(500, options.resendMs));
    return set;
  }

  async #connect(device: string): Promise<void> {
    const address = { tenant: this.#o.tenant, device };
    const client = mqtt.connect(this.#o.url, {
      protocolVersion: 4,
      clientId: `${this.#o.tenant}.${device}`,
      username: deviceUsername(address),
      password: legacyDeviceToken(this.#o.tenantSecret, address),
      clean: false,
      reconnectPeriod: 500,
      connectTimeout: 5_000,
    });
    client.on('connect', () => {
      client.subscribeAsync(deviceTopic(address, 'results'), { qos: 1 }).then(
        () => this.#resendAll(device),
        () => client.stream.destroy(),
      );
    });
    client.on('message', (_topic, payload, packet) => this.#result(payload, packet.dup));
    // Errors surface as reconnects; the counts tell whether anything was lost.
    client.on('error', () => undefined);
    this.#clients.set(device, client);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  }

  #result(payload: Buffer, dup: boolean): void {
    let result: ResultV1;
    try {
      result = decodePayload(ResultV1, payload);
    } catch {
      this.unexpected += 1;
      return;
    }
    const delivery = this.deliveries.get(result.requestId);
    if (delivery === undefined) {
      this.unexpected += 1;
      return;
    }
    delivery.delivered += 1;
    if (dup) delivery.brokerResent += 1;
    delivery.deliveredAt.push(Date.now());
    delivery.statuses.push(`${result.error === undefined ? result.status : `${result.status} ${result.error.code}`}${dup ? ' dup' : ''}`);
    if (delivery.firstResultAt === undefined) {
      delivery.firstResultAt = Date.now();
      delivery.status = result.status;
      delivery.first = result;
    }
    this.#pending.delete(result.requestId);
  }

  /** Uploads a synthetic run and publishes its request; resends until answered. */
  async send(device: string, frames = 1): Promise<string> {
    const seed = this.#seed++;
    const { bytes, truth } = synthesizeXaRun({ seed, rows: 32, columns: 32, frames, bitsStored: 8 });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const instanceUid = `1.2.826.0.1.3680043.10.9.${seed}`;
    const key = `${this.#o.tenant}/${device}/${instanceUid}/${sha256}.dcm`;
    await this.#o.s3.send(new PutObjectCommand({ Bucket: this.#o.bucket, Key: key, Body: bytes }));
    const now = epochNow();
    const uri = `s3://${this.#o.bucket}/${key}`;
    const request: RequestV1 = {
      v: 1,
      id: requestId({ tenant: this.#o.tenant, device, instanceUid, sha256, algorithm: this.#o.algorithm, inputUris: [uri] }),
      tenant: this.#o.tenant,
      device,
      algorithm: this.#o.algorithm,
      instanceUid,
      inputs: [{ uri, size: bytes.byteLength, sha256, contentType: 'application/dicom' }],
      priority: 'clinical',
      timings: { acquired: now, uploaded: now, published: now },
    };
    const payload = encodePayload(request);
    this.deliveries.set(request.id, { delivered: 0, brokerResent: 0, deliveredAt: [], statuses: [], sentAt: Date.now(), sopInstanceUid: truth.sopInstanceUid, resends: 0, resentAt: [] });
    this.#pending.set(request.id, { device, payload, lastSentAt: Date.now() });
    this.#publish(device, payload);
    return request.id;
  }

  #publish(device: string, payload: Buffer): void {
    const client = this.#clients.get(device);
    // Offline: mqtt.js keeps QoS 1 publishes and sends them after the reconnect.
    client?.publishAsync(deviceTopic({ tenant: this.#o.tenant, device }, 'requests'), payload, { qos: 1 }).catch(() => undefined);
  }

  #resendDue(): void {
    const now = Date.now();
    for (const [id, p] of this.#pending) {
      if (now - p.lastSentAt < this.#o.resendMs || this.#clients.get(p.device)?.connected !== true) continue;
      this.#resend(id, p);
    }
  }

  #resendAll(device: string): void {
    for (const [id, p] of this.#pending) if (p.device === device) this.#resend(id, p);
  }

  #resend(id: string, p: { device: string; payload: Buffer; lastSentAt: number }): void {
    p.lastSentAt = Date.now();
    const delivery = this.deliveries.get(id);
    if (delivery) {
      delivery.resends += 1;
      delivery.resentAt.push(p.lastSentAt);
    }
    this.#publish(p.device, p.payload);
  }

  get unanswered(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#clients.values()].map((c) => c.endAsync(true)));
  }
}
