import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { ArteriaError, allDevicesFilter, parseDeviceTopic, toArteriaError, traceContextFrom, type ParsedTopic, type TraceContext } from '@arteria/protocol';
import { IngestTransport, type DeviceDirectory, type IngestHandler, within } from '@arteria/ports';
import { quietLogger, type Logger } from '@arteria/telemetry';
import { IngestSelfCheck, canaryTopic, isCanaryTopic } from './ingest-self-check.js';
import type { MqttTls } from '../mosquitto/mqtt-tls.js';

export interface MqttIngestOptions {
  url: string;
  username: string;
  password: string;
  /** Stable per process (a pod's name). */
  clientId: string;
  sharedGroup: string;
  /**
   * 0 (the default design): a clean session that ends with the connection, so a dead
   * ingest holds no requests; the device resends what got no answer. Above 0 the broker
   * keeps the session (and the requests routed to it) this long while the process is away.
   */
  sessionExpiryS: number;
  keepaliveS: number;
  tls?: MqttTls;
  /** How often a canary request checks the path broker -> this ingest (default 5 s). */
  selfCheckIntervalMs?: number;
  /** How long a canary may take to come back (default 3 s). */
  selfCheckTimeoutMs?: number;
}

export interface MqttIngestDeps {
  ingest: IngestHandler;
  devices?: DeviceDirectory;
  onError?: (error: Error) => void;
  /** The process's logger: connection events (connect, session present or not, disconnect, subscribe, self-check). */
  logger?: Logger;
  /** Where the self-check gauge and counter are registered. */
  metrics?: Registry;
}

const Canary = z.strictObject({ canary: z.string(), nonce: z.string().max(64) });
const REQUESTS = allDevicesFilter('requests');
const STATUS = allDevicesFilter('status');
/** Quiet time after which a draining ingest assumes the broker has sent it everything. */
const QUIET_MS = 300;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Ingest as an MQTT 5 client of a cluster broker. Ingest processes share the request
 * stream through a shared subscription; each request is acknowledged to the broker
 * (PUBACK) only after it is durably enqueued or answered with a rejection.
 *
 * It subscribes again after every connect, whatever the CONNACK's session-present says:
 * a broker may restore a session without its shared subscriptions (Mosquitto 2.0 after a
 * restart), and subscribing to the same filters again is harmless. A periodic canary
 * request through the broker (IngestSelfCheck) decides readiness and repairs a connection
 * that stopped delivering: subscribe again, then reconnect.
 *
 * By default the session is clean: a request the broker sent to a process that died
 * before its PUBACK is dropped with that session and the device's resend (its outbox is
 * durable) reaches a live process, instead of waiting for the dead one to come back.
 */
export class MqttIngestService extends IngestTransport {
  readonly #client: MqttClient;
  readonly #deps: MqttIngestDeps;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  readonly #inHand = new Set<Promise<void>>();
  #handled = 0;
  #lastActivity = 0;

  readonly #options: MqttIngestOptions;
  readonly #canary: string;
  readonly #selfCheck: IngestSelfCheck;
  /** Bumped on every connect: a PUBACK owed to an earlier connection is never sent on a later one. */
  #connection = 0;
  #subscribed = false;
  #subscribing: Promise<boolean> | undefined;
  #disconnectedAt: number | undefined;
  #reconnects = 0;

  private constructor(client: MqttClient, deps: MqttIngestDeps, options: MqttIngestOptions) {
    super('MQTT ingest');
    this.#client = client;
    this.#deps = deps;
    this.#logger = deps.logger ?? quietLogger();
    this.#options = options;
    this.#canary = canaryTopic(options.clientId);
    this.#selfCheck = new IngestSelfCheck({
      intervalMs: options.selfCheckIntervalMs ?? 5_000,
      timeoutMs: options.selfCheckTimeoutMs ?? 3_000,
      send: (nonce) => this.#client.publishAsync(this.#canary, JSON.stringify({ canary: options.clientId, nonce }), { qos: 1 }).then(() => undefined),
      repair: (failures) => this.#repair(failures),
      log: (line, level) => this.#log(line, level),
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
    });
  }

  /** The shared request and status filters, and this process's own canary group. */
  #filters(): { requests: string; status: string; canary: string } {
    const group = this.#options.sharedGroup;
    // A group of one: the canary comes back to this connection, through a shared
    // subscription like the request filter, so it is lost and restored the same way.
    const own = `${group}-self-${this.#options.clientId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    return { requests: `$share/${group}/${REQUESTS}`, status: `$share/${group}/${STATUS}`, canary: `$share/${own}/${this.#canary}` };
  }

  /** Connection events as `msg`, so a plain search of the output finds them; URL and client id as fields. */
  #log(line: string, level: 'info' | 'warn' = 'info'): void {
    this.#logger[level]({ component: 'mqtt-ingest', url: this.#options.url, clientId: this.#options.clientId }, line);
  }

  static async start(options: MqttIngestOptions, deps: MqttIngestDeps): Promise<MqttIngestService> {
    const bound: { service?: MqttIngestService } = {};
    const clientOptions: IClientOptions = {
      protocolVersion: 5,
      clientId: options.clientId,
      username: options.username,
      password: options.password,
      clean: options.sessionExpiryS === 0,
      properties: { sessionExpiryInterval: options.sessionExpiryS },
      keepalive: options.keepaliveS,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      // This service subscribes after every connect itself (mqtt.js skips it when a session is present).
      resubscribe: false,
      ...options.tls,
      // Called for every QoS 1 publish; the PUBACK goes out when `done` is called.
      customHandleAcks: (topic: string, payload: Buffer, packet: IPublishPacket, done: (error: Error | number, code?: number) => void) => {
        const service = bound.service;
        if (service === undefined) return; // not acknowledged: redelivered on the next connection
        service.#receive(topic, payload, done, userTrace(packet));
      },
    };
    // The service exists before the connection does: a resumed session delivers the
    // requests it holds right after CONNACK, before any subscribe.
    const client = mqtt.connect(options.url, clientOptions);
    const service = new MqttIngestService(client, deps, options);
    bound.service = service;
    client.on('connect', (connack) => service.#connected(connack));
    client.on('close', () => service.#closed());
    client.on('disconnect', (packet) => service.#log(`broker sent DISCONNECT (reason code ${packet.reasonCode ?? 0})`, 'warn'));
    await service.life.start(async () => {
      try {
        await new Promise<void>((resolve, reject) => {
          client.once('connect', () => resolve());
          client.once('error', reject);
        });
        // mqtt.js says only "Keepalive timeout" or "connect ECONNREFUSED": name the broker and what to check.
        client.on('error', (err) => deps.onError?.(new ArteriaError('BROKER_UNAVAILABLE', `MQTT broker ${options.url}: ${err.message}; check that the broker is running and reachable from this host (reconnecting)`, { cause: err })));
        // The first subscription decides start-up: a refused filter is a configuration error.
        if (!(await service.#subscribing)) throw new ArteriaError('NOT_AUTHORIZED', `broker ${options.url} refused the ingest subscriptions (check the ingest account's ACL)`);
      } catch (err) {
        service.#selfCheck.stop();
        await client.endAsync(true);
        throw err;
      }
      service.life.defer('MQTT session', () => service.#endSession());
      client.on('message', (topic, payload, packet) => {
        if (packet.qos === 0) service.#status(topic, payload);
      });
      service.#selfCheck.start();
      service.life.defer('self-check', () => service.#selfCheck.stop());
    });
    return service;
  }

  #connected(connack: IConnackPacket): void {
    setNoDelay(this.#client);
    this.#connection += 1;
    const away = this.#disconnectedAt === undefined ? '' : ` after ${Date.now() - this.#disconnectedAt} ms away`;
    this.#log(`${this.#connection === 1 ? 'connected' : 'reconnected'}${away}, session present: ${connack.sessionPresent ? 'yes' : 'no'}; subscribing`);
    this.#disconnectedAt = undefined;
    this.#reconnects = 0;
    this.#subscribing = this.#subscribe();
    if (this.#connection > 1) void this.#subscribing.then((ok) => (ok ? this.#selfCheck.check() : false));
  }

  #closed(): void {
    this.#subscribed = false;
    this.#selfCheck.invalidate();
    if (this.#disconnectedAt === undefined) {
      this.#disconnectedAt = Date.now();
      if (this.life.state === 'starting' || this.life.state === 'running') this.#log('disconnected; reconnecting every 1 s', 'warn');
    } else if ((this.#reconnects += 1) % 30 === 0) {
      this.#log(`still disconnected after ${Math.round((Date.now() - this.#disconnectedAt) / 1000)} s (is the broker running and reachable?)`, 'warn');
    }
  }

  /** Subscribes the request, status and canary filters; true when the broker granted them all. */
  async #subscribe(): Promise<boolean> {
    const { requests, status, canary } = this.#filters();
    try {
      const granted = await this.#client.subscribeAsync({ [requests]: { qos: 1 }, [status]: { qos: 0 }, [canary]: { qos: 1 } });
      const refused = granted.filter((g) => g.qos > 2);
      if (refused.length > 0) {
        this.#deps.onError?.(new ArteriaError('NOT_AUTHORIZED', `broker ${this.#options.url} refused ingest subscriptions ${refused.map((g) => g.topic).join(', ')}`));
        return false;
      }
      this.#subscribed = true;
      this.#log(`subscribed to ${requests}, ${status} and ${canary}`);
      return true;
    } catch (err) {
      this.#deps.onError?.(toArteriaError(err));
      return false;
    }
  }

  /** After a failed self-check: subscribe again; from the second failure in a row, reconnect too. */
  async #repair(failures: number): Promise<void> {
    if (!this.life.running || !this.#client.connected) return;
    if (failures >= 2) {
      this.#log('reconnecting: subscribing again did not bring the canary back', 'warn');
      const stream = this.#client.stream as { destroy?: () => void };
      stream.destroy?.(); // mqtt.js reconnects; the connect handler subscribes
      return;
    }
    this.#log('subscribing again');
    // A silent connection never answers the SUBSCRIBE either: the next check decides.
    await within(this.#subscribe(), this.#options.selfCheckTimeoutMs ?? 3_000);
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  /** Able to admit: connected, subscribed, and the last canary came back through the broker. */
  get ready(): boolean {
    return this.#client.connected && this.#subscribed && this.#selfCheck.ok;
  }

  get selfCheck(): IngestSelfCheck['status'] {
    return this.#selfCheck.status;
  }

  /** Runs a self-check now (tests, operators' probes); resolves with its outcome. */
  checkNow(): Promise<boolean> {
    return this.#selfCheck.check();
  }

  /** Requests handled (accepted, duplicate or rejected) by this process. */
  get handled(): number {
    return this.#handled;
  }

  #status(topic: string, payload: Buffer): void {
    try {
      this.#deps.devices?.record(parseDeviceTopic(topic), payload);
    } catch (err) {
      this.#deps.onError?.(toArteriaError(err));
    }
  }

  #receive(topic: string, payload: Buffer, done: (error: Error | number, code?: number) => void, trace: TraceContext | undefined): void {
    if (this.#stop.signal.aborted) return; // giving up: leave it unacknowledged for the next session
    if (isCanaryTopic(topic)) {
      this.#canaryArrived(payload);
      done(0);
      return;
    }
    const connection = this.#connection;
    const receivedAt = Date.now();
    let parsed: ParsedTopic;
    try {
      parsed = parseDeviceTopic(topic);
    } catch (err) {
      // The broker ACL keeps devices on their own topics; anything else is dropped with a note.
      this.#deps.onError?.(toArteriaError(err));
      done(0);
      return;
    }
    const work = this.#admit(parsed, payload, receivedAt, trace).then((acknowledge) => {
      if (!acknowledge) return;
      this.#handled += 1;
      // Packet ids belong to a connection: on a later one this id may name another request.
      if (connection === this.#connection) done(0);
    });
    this.#inHand.add(work);
    void work.finally(() => this.#inHand.delete(work));
  }

  /** Resolves true once the request is enqueued or answered; false when shutting down first. */
  async #admit(topic: ParsedTopic, payload: Buffer, receivedAt: number, trace: TraceContext | undefined): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await this.#deps.ingest.handle(topic, payload, { receivedAt, ...(trace === undefined ? {} : { trace }) });
        if (outcome.status === 'duplicate' && outcome.answered === true) this.#log(`request ${outcome.requestId} asked again after its result was recorded: answered from the ledger`);
        return true;
      } catch (err) {
        // Retryable (queue unavailable): hold the PUBACK and try again; the broker keeps the request.
        this.#deps.onError?.(toArteriaError(err));
        if (this.#stop.signal.aborted) return false;
        await sleep(Math.min(5_000, 100 * 2 ** attempt), this.#stop.signal);
        if (this.#stop.signal.aborted) return false;
      }
    }
  }

  #canaryArrived(payload: Buffer): void {
    let canary: z.infer<typeof Canary>;
    try {
      canary = Canary.parse(JSON.parse(payload.toString('utf8')));
    } catch (err) {
      this.#deps.onError?.(new ArteriaError('INVALID_REQUEST', `unreadable canary request: ${(err as Error).message}`));
      return;
    }
    // Another ingest's canary also reaches one member of the request group: nothing to do.
    this.#selfCheck.received(canary.nonce);
  }

  /**
   * Scale-in: unsubscribes (the broker routes the shared stream to the other ingest
   * processes), then keeps admitting what the broker already sent this session until quiet
   * or `timeoutMs`. Requests still stuck after it (queue down) stay unacknowledged when the
   * session ends: with a clean session the device's resend brings them to another process;
   * with a kept session the broker hands them back when this instance returns.
   */
  protected async settle(timeoutMs: number): Promise<void> {
    this.#selfCheck.stop();
    const end = Date.now() + timeoutMs;
    if (this.#client.connected) {
      await this.#client.unsubscribeAsync(Object.values(this.#filters())).catch((err: unknown) => this.#deps.onError?.(toArteriaError(err)));
    }
    this.#lastActivity = Date.now();
    while (Date.now() < end && (this.#inHand.size > 0 || Date.now() - this.#lastActivity < QUIET_MS)) await delay(20);
  }

  /** Gives up on requests still in hand (they stay with the broker) and ends the connection. */
  async #endSession(): Promise<void> {
    const clean = this.#inHand.size === 0 && this.#client.connected;
    this.#stop.abort(); // retry loops give up: their requests stay with the broker
    await Promise.all([...this.#inHand]);
    await this.#client.endAsync(clean ? { properties: { sessionExpiryInterval: 0 } } : {});
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** The W3C trace context an MQTT 5 sender put in the user properties `traceparent` / `tracestate`, if valid. */
function userTrace(packet: IPublishPacket): TraceContext | undefined {
  const props = packet.properties?.userProperties;
  if (props === undefined) return undefined;
  const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);
  return traceContextFrom(first(props.traceparent), first(props.tracestate));
}

function setNoDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (flag: boolean) => void };
  stream.setNoDelay?.(true);
}
