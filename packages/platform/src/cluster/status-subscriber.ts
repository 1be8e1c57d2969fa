import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ArteriaError, Lifecycle, allDevicesFilter, parseDeviceTopic, toArteriaError } from '@arteria/protocol';
import type { DeviceDirectory } from '@arteria/ports';
import type { ClusterConfig } from './cluster-config.js';
import { brokerServiceCredentials, loadMqttTls, type MqttTls } from '@arteria/engine-mqtt';

const STATUS = allDevicesFilter('status');
/** Retained configuration reports: the version each gateway runs (optional; an ACL may refuse it). */
const REPORTED = allDevicesFilter('config/reported');
/** Both at QoS 0: a status that is lost is replaced by the next. */
const SUBSCRIPTIONS = { [STATUS]: { qos: 0 }, [REPORTED]: { qos: 0 } } as const;

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
  readonly #life = new Lifecycle('the device status subscriber');

  private constructor(client: MqttClient) {
    this.#client = client;
    // Not connected (a background subscriber still looking for its broker): nothing to flush.
    this.#life.defer('MQTT client', () => client.endAsync(!client.connected).then(() => undefined));
    this.#life.begin();
  }

  static async start(options: StatusSubscriberOptions, devices: DeviceDirectory, onError?: (error: Error) => void): Promise<StatusSubscriber> {
    const client = mqtt.connect(options.url, clientOptions(options));
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      noDelay(client);
      client.on('connect', () => {
        noDelay(client);
        // A clean session forgets its subscription on reconnect.
        client.subscribeAsync(SUBSCRIPTIONS).catch((err: unknown) => onError?.(toArteriaError(err)));
      });
      client.on('error', (err) => onError?.(err));
      const granted = await client.subscribeAsync(SUBSCRIPTIONS);
      if (granted.some((g) => g.topic === STATUS && g.qos > 2)) throw new ArteriaError('NOT_AUTHORIZED', `broker refused the subscription to ${STATUS}`);
      if (granted.some((g) => g.topic === REPORTED && g.qos > 2)) onError?.(new ArteriaError('NOT_AUTHORIZED', `broker refused the subscription to ${REPORTED}: the fleet view shows no configuration versions (allow it in the broker's ACL)`));
    } catch (err) {
      await client.endAsync(true);
      throw err;
    }
    feed(client, devices, onError);
    return new StatusSubscriber(client);
  }

  /**
   * Like start(), without waiting for the broker: for roles to which device status is an
   * optional signal. It keeps reconnecting; `log` gets one line when the broker is
   * reached and one per outage (not one per failed attempt).
   */
  static background(options: StatusSubscriberOptions, devices: DeviceDirectory, log: (message: string, level?: 'info' | 'warn') => void): StatusSubscriber {
    const client = mqtt.connect(options.url, clientOptions(options));
    let reachable: boolean | undefined;
    client.on('connect', () => {
      noDelay(client);
      if (reachable !== true) log(`device status: connected to ${options.url}`);
      reachable = true;
      client.subscribeAsync(SUBSCRIPTIONS).then(
        (granted) => {
          if (granted.some((g) => g.topic === STATUS && g.qos > 2)) log(`device status: ${options.url} refused the subscription to ${STATUS} for ${options.username}; check the broker's ACL`, 'warn');
        },
        (err: unknown) => log(`device status: subscribe to ${STATUS} failed: ${toArteriaError(err).message}`, 'warn'),
      );
    });
    const down = (why: string): void => {
      if (reachable === false) return;
      reachable = false;
      log(`device status: broker ${options.url} not reachable as ${options.username} (${why}); running without device status, retrying every ${RETRY_MS / 1000} s`, 'warn');
    };
    client.on('error', (err) => down(err.message));
    client.on('offline', () => down('offline'));
    feed(client, devices, (err) => log(`device status: ${err.message}`, 'warn'));
    return new StatusSubscriber(client);
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** Disconnects; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const RETRY_MS = 1_000;

function clientOptions(options: StatusSubscriberOptions): IClientOptions {
  return {
    protocolVersion: 5,
    clientId: options.clientId,
    username: options.username,
    password: options.password,
    clean: true,
    keepalive: options.keepaliveS,
    reconnectPeriod: RETRY_MS,
    connectTimeout: 10_000,
    ...options.tls,
  };
}

function feed(client: MqttClient, devices: DeviceDirectory, onError?: (error: Error) => void): void {
  client.on('message', (topic, payload) => {
    try {
      devices.record(parseDeviceTopic(topic), payload);
    } catch (err) {
      onError?.(toArteriaError(err));
    }
  });
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
  return StatusSubscriber.start(await fleetStatusOptions(config, platformSecret, role), devices, onError);
}

export async function fleetStatusOptions(config: Readonly<ClusterConfig>, platformSecret: string, role: 'autoscaler' | 'dashboard'): Promise<StatusSubscriberOptions> {
  return { url: config.mqtt.url, tls: await loadMqttTls(config.mqtt), ...brokerServiceCredentials(platformSecret, 'dashboard'), clientId: `arteria-${role}-${config.instanceId}`, keepaliveS: config.mqtt.keepaliveS };
}
