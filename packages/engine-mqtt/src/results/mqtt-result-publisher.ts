import mqtt, { type MqttClient } from 'mqtt';
import { Lifecycle, deviceTopic, encodePayload, type GrantAnswerV1, type PartialResultV1, type ProbeAnswerV1, type ResultV1 } from '@arteria/protocol';
import { serviceClientIdPrefix, serviceToken, serviceUsername, type ResultPublisher } from '@arteria/ports';

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
  readonly #life = new Lifecycle('result publisher');

  private constructor(client: MqttClient) {
    this.#client = client;
    this.#life.defer('MQTT connection', () => this.#client.endAsync());
    this.#life.begin();
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

  publish(result: ResultV1): Promise<void> {
    return this.#send(deviceTopic(result, 'results'), encodePayload(result));
  }

  publishProbeAnswer(answer: ProbeAnswerV1): Promise<void> {
    return this.#send(deviceTopic(answer, 'results'), encodePayload(answer));
  }

  publishGrant(answer: GrantAnswerV1): Promise<void> {
    return this.#send(deviceTopic(answer, 'results'), encodePayload(answer));
  }

  publishPartial(partial: PartialResultV1): Promise<void> {
    return this.#send(deviceTopic(partial, 'results'), encodePayload(partial));
  }

  async #send(topic: string, payload: Buffer): Promise<void> {
    this.#life.assertRunning('publish');
    await this.#client.publishAsync(topic, payload, { qos: 1 });
  }

  /** Ends the connection; memoised, and a publish after it is ILLEGAL_STATE. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function setNoDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (flag: boolean) => void };
  stream.setNoDelay?.(true);
}
