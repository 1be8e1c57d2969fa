import type { Agent } from 'node:http';
import type { Socket } from 'node:net';
import { connect, type MqttClient } from 'mqtt';
import { deviceTopic, deviceUsername, encodePayload, type DeviceAddress, type ReportedConfigV1, type RequestV1, type StatusV1, ArteriaError } from '@arteria/protocol';
import { ReconnectBackoff, type BackoffSettings } from './backoff.js';
import { TypedEmitter } from '../events.js';
import { errorFields, type GatewayLogger } from '../log.js';
import { GATEWAY_VERSION } from '../version.js';
import type { MqttTlsMaterial } from '../config/tls.js';

export interface ConnectionOptions extends DeviceAddress {
  url: string;
  token: string;
  connectTimeoutMs: number;
  /**
   * `auto`: MQTT 5, and MQTT 3.1.1 once a broker refuses version 5 in its CONNACK (aedes,
   * the NATS MQTT listener); `5` or `3.1.1`: that version only.
   */
  protocol: MqttProtocolSetting;
  /** Delays between connection attempts: exponential with full jitter (backoff.ts). */
  reconnect: BackoffSettings;
  /** ws:// and wss://: the site proxy's tunnelling agent, when the broker is reached through one. */
  proxyAgent?: Agent;
  /** Random source of the reconnect jitter (tests). */
  random?: () => number;
  /** CA, client certificate and key for mqtts:// (read at start). */
  tls?: MqttTlsMaterial;
}

/** The device's inbound topics; each has one handler. */
export type InboundTopic = 'results' | 'config';

/**
 * Handles a message on an inbound topic. Called synchronously before the client sends the
 * PUBACK, so whatever the handler commits is durable before the platform may forget it;
 * if it throws, no PUBACK is sent and the broker delivers the message again.
 */
export type MessageHandler = (payload: Buffer) => void;

export interface ConnectionEvents {
  /** Connected, subscribed and announced online: requests may be published. */
  ready: undefined;
  /** A ready connection was lost (it reconnects on its own). */
  down: undefined;
  /** A connection attempt or the connection failed: the broker's refusal, a TLS or network error. */
  error: { message: string };
}

export type ConnectionState = 'connecting' | 'ready' | 'down' | 'closed';
export type MqttProtocolSetting = 'auto' | '5' | '3.1.1';
/** The MQTT version spoken on the wire: 5, or 4 (3.1.1). */
export type MqttProtocolVersion = 4 | 5;

/**
 * Session expiry asked for under MQTT 5: never, as a 3.1.1 persistent session (`clean:
 * false`). MQTT 5 ends a session at the disconnect unless the client asks otherwise, and
 * results queued for an offline gateway would be lost with it. A broker may grant less
 * (AWS IoT Core: one hour by default); the outbox covers the rest, as its resend after
 * the reconnect is answered from the ledger.
 */
export const SESSION_EXPIRY_NEVER_S = 0xffff_ffff;

/** CONNACK codes of a broker that does not speak the version asked: 3.1.1's 1, MQTT 5's 0x84. */
const UNSUPPORTED_VERSION = new Set([1, 0x84]);

/**
 * The device's MQTT session: MQTT 5 where the broker speaks it (the trace context travels
 * in user properties), else 3.1.1, which every Arteria broker speaks. A persistent session
 * (`clean: false`, clientId `{tenant}.{device}`; under MQTT 5 with a session expiry that
 * never ends) lets the broker queue results while the gateway is offline; the retained
 * last will marks the device offline when the connection dies without a goodbye.
 */
export class DeviceConnection {
  readonly #options: ConnectionOptions;
  readonly #handlers = new Map<InboundTopic, MessageHandler>();
  readonly #events: TypedEmitter<ConnectionEvents>;
  readonly #logger: GatewayLogger;
  readonly #topics: { requests: string; results: string; status: string; config: string; reported: string };
  #client: MqttClient | undefined;
  #state: ConnectionState = 'connecting';
  #status: Pick<StatusV1, 'inProcedure' | 'outboxDepth'> = {};
  /** Resolves start() when the first connection attempt is ready or has failed. */
  #onReadyOnce: (() => void) | undefined;
  readonly #backoff: ReconnectBackoff;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  #version: MqttProtocolVersion;

  constructor(options: ConnectionOptions, logger: GatewayLogger) {
    this.#options = options;
    this.#logger = logger;
    this.#events = new TypedEmitter<ConnectionEvents>((err, event) => logger.error('MQTT connection listener threw', { event, ...errorFields(err) }));
    this.#backoff = new ReconnectBackoff(options.reconnect, options.random);
    this.#version = options.protocol === '3.1.1' ? 4 : 5;
    this.#topics = {
      requests: deviceTopic(options, 'requests'),
      results: deviceTopic(options, 'results'),
      status: deviceTopic(options, 'status'),
      config: deviceTopic(options, 'config'),
      reported: deviceTopic(options, 'config/reported'),
    };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Why the last connection attempt failed (the broker's refusal, a TLS or network error); cleared once ready. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** The MQTT version of the current (or next) connection: 5, or 4 once the broker refused 5. */
  get protocolVersion(): MqttProtocolVersion {
    return this.#version;
  }

  /** Sets the one handler of an inbound topic (before start()). */
  handle(topic: InboundTopic, handler: MessageHandler): void {
    if (this.#handlers.has(topic)) throw new ArteriaError('ILLEGAL_STATE', `the ${topic} topic already has a handler`);
    this.#handlers.set(topic, handler);
  }

  /** Follows the connection's state; returns the function that stops it. */
  on<K extends keyof ConnectionEvents>(event: K, listener: (payload: ConnectionEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Connects; resolves once the first attempt is ready or has failed (reconnects go on either way). */
  async start(): Promise<void> {
    const { tenant, device } = this.#options;
    const client = connect(this.#options.url, {
      ...this.#versionOptions(),
      clientId: `${tenant}.${device}`,
      clean: false,
      username: deviceUsername({ tenant, device }),
      password: this.#options.token,
      connectTimeout: this.#options.connectTimeoutMs,
      // mqtt.js only knows a fixed period; this class schedules each reconnect itself.
      reconnectPeriod: 0,
      ...(this.#options.proxyAgent ? { wsOptions: { agent: this.#options.proxyAgent } } : {}),
      keepalive: 30,
      will: { topic: this.#topics.status, payload: this.#statusPayload('offline'), qos: 1, retain: true },
      ...this.#options.tls,
    });
    this.#client = client;
    // Set by a CONNACK that refuses MQTT 5: the next attempt, at once, speaks 3.1.1 (and
    // is the one start() waits for).
    let fallBack = false;
    const firstAttempt = new Promise<void>((resolve) => {
      const settle = (): void => {
        if (fallBack) return;
        client.off('close', settle);
        this.#onReadyOnce = undefined;
        resolve();
      };
      this.#onReadyOnce = settle;
      client.on('close', settle);
    });
    client.on('connect', (connack) => {
      // Small request/response messages: Nagle would add tens of milliseconds to each.
      (client.stream as Partial<Socket>).setNoDelay?.(true);
      this.#onConnect(client, connack.sessionPresent).catch((err: unknown) => {
        this.#logger.warn('MQTT session setup failed; reconnecting', errorFields(err));
        client.stream.destroy();
      });
    });
    // handleMessage runs before the PUBACK is sent; a handler that fails withholds it, so
    // the broker delivers the message again (persistent session) instead of losing it.
    client.handleMessage = (packet, callback) => {
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      try {
        const topic = packet.topic === this.#topics.results ? 'results' : packet.topic === this.#topics.config ? 'config' : undefined;
        if (topic !== undefined) {
          const handler = this.#handlers.get(topic);
          // Not acknowledged: the broker keeps it for a connection that can take it.
          if (handler === undefined) throw new ArteriaError('ILLEGAL_STATE', `no handler for the ${topic} topic`);
          handler(payload);
        }
        callback();
      } catch (err) {
        this.#logger.error('handling an MQTT message failed; it is not acknowledged', { topic: packet.topic, ...errorFields(err) });
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    };
    client.on('close', () => {
      if (this.#state === 'closed') return;
      const wasReady = this.#state === 'ready';
      this.#state = 'down';
      const delayMs = this.#scheduleReconnect(client, fallBack);
      fallBack = false;
      if (wasReady) {
        this.#logger.warn('MQTT connection lost; reconnecting', { url: this.#options.url, delayMs });
        this.#events.emit('down', undefined);
      } else if (delayMs !== undefined) {
        this.#logger.info('MQTT reconnecting', { url: this.#options.url, attempt: this.#backoff.attempt, delayMs });
      }
    });
    client.on('error', (err) => {
      const code = (err as Partial<{ code: unknown }>).code;
      if (this.#options.protocol === 'auto' && this.#version === 5 && typeof code === 'number' && UNSUPPORTED_VERSION.has(code)) {
        fallBack = true;
        this.#version = 4;
        // The client reads its options at every connect: the next CONNECT is a 3.1.1 one.
        Object.assign(client.options, this.#versionOptions());
        delete client.options.properties;
        this.#logger.info('the broker does not speak MQTT 5; using MQTT 3.1.1 (trace context in the payload)', { url: this.#options.url });
        return;
      }
      this.#lastError = err.message;
      this.#logger.warn('MQTT error', { url: this.#options.url, ...errorFields(err) });
      this.#events.emit('error', { message: err.message });
    });
    await firstAttempt;
  }

  async #onConnect(client: MqttClient, sessionPresent: boolean): Promise<void> {
    const grants = await client.subscribeAsync({ [this.#topics.results]: { qos: 1 }, [this.#topics.config]: { qos: 1 } });
    for (const grant of grants) {
      if (grant.qos === 128) this.#logger.error('broker refused a subscription', { topic: grant.topic });
    }
    await client.publishAsync(this.#topics.status, this.#statusPayload('online'), { qos: 1, retain: true });
    if (this.#client !== client || this.#state === 'closed') return;
    this.#state = 'ready';
    this.#lastError = undefined;
    this.#backoff.reset(); // only a connection that got this far starts the delays over
    this.#logger.info('MQTT connection ready', { url: this.#options.url, protocol: this.#version === 5 ? '5' : '3.1.1', sessionPresent });
    this.#onReadyOnce?.();
    this.#events.emit('ready', undefined);
  }

  /**
   * Publishes a run's request at QoS 1; resolves on the broker's PUBACK. Under MQTT 5 its
   * trace context goes in the user properties `traceparent` / `tracestate` (as HTTP
   * headers would carry it) and leaves the payload; under 3.1.1 it stays in the payload.
   */
  async publishRunRequest(request: RequestV1): Promise<void> {
    const client = this.#requireClient();
    const { trace, ...bare } = request;
    if (this.#version !== 5 || trace === undefined) {
      await client.publishAsync(this.#topics.requests, encodePayload(request), { qos: 1 });
      return;
    }
    await client.publishAsync(this.#topics.requests, encodePayload(bare), { qos: 1, properties: { userProperties: { ...trace } } });
  }

  /** Publishes a message on the requests topic (grant requests, admission probes) at QoS 1; resolves on the broker's PUBACK. */
  async publishRequest(payload: Buffer): Promise<void> {
    const client = this.#requireClient();
    await client.publishAsync(this.#topics.requests, payload, { qos: 1 });
  }

  async publishReported(reported: ReportedConfigV1): Promise<void> {
    await this.#requireClient().publishAsync(this.#topics.reported, encodePayload(reported), { qos: 1, retain: true });
  }

  /** Updates the fields the status message carries and republishes it when connected. */
  async updateStatus(fields: Pick<StatusV1, 'inProcedure' | 'outboxDepth'>): Promise<void> {
    this.#status = { ...this.#status, ...fields };
    if (this.#state !== 'ready') return;
    await this.#requireClient().publishAsync(this.#topics.status, this.#statusPayload('online'), { qos: 1, retain: true });
  }

  /** Says goodbye (retained offline status) when connected, then disconnects. Idempotent. */
  async close(): Promise<void> {
    const client = this.#client;
    if (this.#state === 'closed' || client === undefined) {
      this.#state = 'closed';
      return;
    }
    const wasReady = this.#state === 'ready';
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    this.#onReadyOnce?.();
    // Bounded: a broker that went away must not hold close() hostage (the will covers it then).
    const saidGoodbye = wasReady && (await this.#bounded(client.publishAsync(this.#topics.status, this.#statusPayload('offline'), { qos: 1, retain: true })));
    // A DISCONNECT tells the broker not to publish the (older) last will over the goodbye.
    // mqtt.js first waits for unacknowledged publishes; bounded too, as those requests stay
    // in the outbox and go out again on the next start anyway.
    if (!saidGoodbye || !(await this.#bounded(client.endAsync(false)))) {
      client.stream.destroy();
      await client.endAsync(true);
    }
  }

  /**
   * Schedules the next connection attempt after a jittered, growing delay; returns the
   * delay, or undefined when one is already scheduled. The client's message stores are
   * kept, so QoS 1 publishes in flight go out again on the new connection.
   */
  #scheduleReconnect(client: MqttClient, now: boolean): number | undefined {
    if (this.#reconnectTimer !== undefined) return undefined;
    const delayMs = now ? 0 : this.#backoff.next();
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state === 'closed' || this.#client !== client) return;
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delayMs);
    return delayMs;
  }

  /** True when `operation` finished within the connect timeout; failures are logged. */
  async #bounded(operation: Promise<unknown>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#options.connectTimeoutMs);
    });
    try {
      return await Promise.race([operation.then(() => true as const), timedOut]);
    } catch (err) {
      this.#logger.warn('MQTT goodbye failed', errorFields(err));
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connect options of the version in use. */
  #versionOptions(): { protocolVersion: MqttProtocolVersion; properties?: { sessionExpiryInterval: number } } {
    return this.#version === 5 ? { protocolVersion: 5, properties: { sessionExpiryInterval: SESSION_EXPIRY_NEVER_S } } : { protocolVersion: 4 };
  }

  #statusPayload(state: 'online' | 'offline'): Buffer {
    const status: StatusV1 = { v: 1, state, at: performance.timeOrigin + performance.now(), gatewayVersion: GATEWAY_VERSION, ...this.#status };
    return encodePayload(status);
  }

  #requireClient(): MqttClient {
    if (this.#client === undefined || this.#state === 'closed') throw new ArteriaError('ILLEGAL_STATE', 'MQTT connection is closed: cannot publish');
    return this.#client;
  }
}
