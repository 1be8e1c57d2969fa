import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { connect, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { errorFields, type GatewayLogger, loadMqttTls, MqttTlsOptions } from '@arteria/gateway';

/** A broker on the hospital network where local systems subscribe to results. */
export const LocalMqttOptions = z.strictObject({
  /** `mqtt://host:1883` or `mqtts://host:8883`. */
  url: z.string().regex(/^mqtts?:\/\/[^/]+$/, 'must be mqtt://host:port or mqtts://host:port'),
  /** Events go to `{topicPrefix}/{device}/results`. */
  topicPrefix: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^#+\0]+$/, 'must not contain MQTT wildcards')
    .refine((s) => !s.startsWith('/') && !s.endsWith('/'), 'must not start or end with "/"')
    .default('arteria'),
  tls: MqttTlsOptions.optional(),
  username: z.string().min(1).optional(),
  /** A file holding the password (so it never sits in the configuration). */
  passwordFile: z.string().min(1).optional(),
  /** Default `arteria-gateway-{device}-results`. */
  clientId: z.string().min(1).max(128).optional(),
  /** How long one publish may wait for the broker's PUBACK before it counts as failed (and is retried). */
  publishTimeoutMs: z.number().int().positive().default(10_000),
});
export type LocalMqttOptionsInput = z.input<typeof LocalMqttOptions>;
export type LocalMqttOptions = z.output<typeof LocalMqttOptions>;

/**
 * Publishes re-identified result events to the site's own broker, QoS 1. The client
 * reconnects by itself; a publish while the broker is away fails at once (the caller's
 * durable delivery retries it), and one that gets no PUBACK in time fails too.
 */
export class LocalMqttPublisher {
  readonly #options: LocalMqttOptions;
  readonly #logger: GatewayLogger;
  readonly #clientId: string;
  #client: MqttClient | undefined;
  #closed = false;

  constructor(options: LocalMqttOptions, device: string, logger: GatewayLogger) {
    this.#options = options;
    this.#logger = logger;
    this.#clientId = options.clientId ?? `arteria-gateway-${device}-results`;
  }

  topic(device: string): string {
    return `${this.#options.topicPrefix}/${device}/results`;
  }

  /** Starts connecting (reading the TLS and password files first); does not wait for the broker. */
  async start(): Promise<void> {
    if (this.#client !== undefined || this.#closed) return;
    const tls = await loadMqttTls(this.#options.tls);
    let password: string | undefined;
    if (this.#options.passwordFile !== undefined) {
      try {
        password = (await readFile(this.#options.passwordFile, 'utf8')).trim();
      } catch (err) {
        throw new ArteriaError('CONFIG_INVALID', `results.mqtt.passwordFile ${this.#options.passwordFile} cannot be read: ${(err as Error).message}`, { cause: err });
      }
    }
    if (this.#closed) return;
    const client = connect(this.#options.url, {
      protocolVersion: 4,
      clientId: this.#clientId,
      clean: true,
      connectTimeout: 10_000,
      reconnectPeriod: 2_000,
      keepalive: 30,
      ...(this.#options.username !== undefined && { username: this.#options.username }),
      ...(password !== undefined && { password }),
      ...tls,
    });
    client.on('connect', () => {
      (client.stream as Partial<Socket>).setNoDelay?.(true);
      this.#logger.info('local MQTT broker connected', { url: this.#options.url });
    });
    let reported = false;
    client.on('error', (err) => {
      if (!reported) this.#logger.warn('local MQTT broker unavailable; result events wait and are retried', { url: this.#options.url, ...errorFields(err) });
      reported = true;
    });
    client.on('connect', () => (reported = false));
    this.#client = client;
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** Resolves once the broker acknowledged the message (PUBACK). */
  async publish(topic: string, payload: string): Promise<void> {
    const client = this.#client;
    if (client === undefined || !client.connected) throw new ArteriaError('STORAGE_UNAVAILABLE', `local MQTT broker ${this.#options.url} is not connected`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new ArteriaError('STORAGE_UNAVAILABLE', `local MQTT broker ${this.#options.url} did not acknowledge within ${this.#options.publishTimeoutMs} ms`)), this.#options.publishTimeoutMs);
    });
    try {
      await Promise.race([client.publishAsync(topic, payload, { qos: 1 }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Disconnects (messages not yet acknowledged stay with their durable delivery). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client?.endAsync(true);
  }
}
