import mqtt, { type MqttClient } from 'mqtt';
import { deviceTopic, encodePayload, type GrantAnswerV1, type ProbeAnswerV1, type ResultV1 } from '@arteria/protocol';
import { serviceClientIdPrefix } from '../auth/client-id.js';
import { serviceToken, serviceUsername } from '../auth/identity.js';
import type { ResultPublisher } from './result-publisher.js';

export interface MqttPublisherOptions {
  url: string;
  serviceName: string;
  platformSecret: string;
  /** Broker account, when the broker keeps its own (Mosquitto's password file); default: the embedded service identity. */
  credentials?: { username: string; password: string };
  /** CA, client certificate and key for mqtts://. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** Publishes results over MQTT as a platform service, the same way against any broker. */
export class MqttResultPublisher implements ResultPublisher {
  readonly #client: MqttClient;
  #closed = false;

  private constructor(client: MqttClient) {
    this.#client = client;
  }

  static async connect(options: MqttPublisherOptions): Promise<MqttResultPublisher> {
    const client = await mqtt.connectAsync(options.url, {
      protocolVersion: 4,
      // One session per process; the broker binds `arteria-{service}-*` to the service's identity.
      clientId: `${serviceClientIdPrefix(options.serviceName)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      username: options.credentials?.username ?? serviceUsername(options.serviceName),
      password: options.credentials?.password ?? serviceToken(options.platformSecret, options.serviceName),
      clean: true,
      reconnectPeriod: 500,
      ...options.tls,
    });
    setNoDelay(client);
    client.on('connect', () => setNoDelay(client));
    return new MqttResultPublisher(client);
  }

  async publish(result: ResultV1): Promise<void> {
    const topic = deviceTopic(result, 'results');
    await this.#client.publishAsync(topic, encodePayload(result), { qos: 1 });
  }

  async publishProbeAnswer(answer: ProbeAnswerV1): Promise<void> {
    await this.#client.publishAsync(deviceTopic(answer, 'results'), encodePayload(answer), { qos: 1 });
  }

  async publishGrant(answer: GrantAnswerV1): Promise<void> {
    await this.#client.publishAsync(deviceTopic(answer, 'results'), encodePayload(answer), { qos: 1 });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.endAsync();
  }
}

function setNoDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (flag: boolean) => void };
  stream.setNoDelay?.(true);
}
