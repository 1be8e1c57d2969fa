import mqtt, { type MqttClient } from 'mqtt';
import { ArteriaError, parseDeviceTopic, toArteriaError } from '@arteria/protocol';
import type { DeviceDirectory } from '../devices/device-directory.js';
import type { ClusterConfig } from './cluster-config.js';
import { brokerServiceCredentials } from './mosquitto-files.js';
import { loadMqttTls, type MqttTls } from './mqtt-tls.js';

const STATUS = 'arteria/v1/+/+/status';

export interface StatusSubscriberOptions {
  url: string;
  username: string;
  password: string;
  clientId: string;
  keepaliveS: number;
  tls?: MqttTls;
}

/**
 * Feeds a DeviceDirectory from the devices' status topic: a plain (non-shared)
 * subscription, so every process that wants the whole fleet's view (autoscaler,
 * dashboard) sees every device. Status messages are retained-free QoS 0 beacons; a
 * lost one is replaced by the next.
 */
export class StatusSubscriber {
  readonly #client: MqttClient;
  #closing: Promise<void> | undefined;

  private constructor(client: MqttClient) {
    this.#client = client;
  }

  static async start(options: StatusSubscriberOptions, devices: DeviceDirectory, onError?: (error: Error) => void): Promise<StatusSubscriber> {
    const client = mqtt.connect(options.url, {
      protocolVersion: 5,
      clientId: options.clientId,
      username: options.username,
      password: options.password,
      clean: true,
      keepalive: options.keepaliveS,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      ...options.tls,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      noDelay(client);
      client.on('connect', () => {
        noDelay(client);
        // A clean session forgets its subscription on reconnect.
        client.subscribeAsync(STATUS, { qos: 0 }).catch((err: unknown) => onError?.(toArteriaError(err)));
      });
      client.on('error', (err) => onError?.(err));
      const granted = await client.subscribeAsync(STATUS, { qos: 0 });
      if (granted.some((g) => g.qos > 2)) throw new ArteriaError('NOT_AUTHORIZED', `broker refused the subscription to ${STATUS}`);
    } catch (err) {
      await client.endAsync(true);
      throw err;
    }
    client.on('message', (topic, payload) => {
      try {
        devices.record(parseDeviceTopic(topic), payload);
      } catch (err) {
        onError?.(toArteriaError(err));
      }
    });
    return new StatusSubscriber(client);
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#client.endAsync().then(() => undefined);
    return this.#closing;
  }
}

function noDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (on: boolean) => void } | undefined;
  stream?.setNoDelay?.(true);
}

/**
 * The fleet's status for a cluster role that watches devices (`autoscaler`, `dashboard`):
 * the dashboard's broker account reads the status topic, which is all either needs.
 */
export async function startFleetStatus(config: Readonly<ClusterConfig>, platformSecret: string, role: 'autoscaler' | 'dashboard', devices: DeviceDirectory, onError?: (error: Error) => void): Promise<StatusSubscriber> {
  return StatusSubscriber.start(
    { url: config.mqtt.url, tls: await loadMqttTls(config.mqtt), ...brokerServiceCredentials(platformSecret, 'dashboard'), clientId: `arteria-${role}-${config.instanceId}`, keepaliveS: config.mqtt.keepaliveS },
    devices,
    onError,
  );
}
