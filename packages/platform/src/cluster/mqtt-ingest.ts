import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ArteriaError, parseDeviceTopic, toArteriaError, type ParsedTopic } from '@arteria/protocol';
import type { DeviceDirectory } from '../devices/device-directory.js';
import type { Ingest } from '../ingest/ingest.js';
import type { MqttTls } from './mqtt-tls.js';

export interface MqttIngestOptions {
  url: string;
  username: string;
  password: string;
  /** Stable per process (a pod's name): the broker keeps this session's unacknowledged requests. */
  clientId: string;
  sharedGroup: string;
  sessionExpiryS: number;
  keepaliveS: number;
  tls?: MqttTls;
}

export interface MqttIngestDeps {
  ingest: Ingest;
  devices?: DeviceDirectory;
  onError?: (error: Error) => void;
}

export type MqttIngestState = 'starting' | 'running' | 'draining' | 'stopped';

const REQUESTS = 'arteria/v1/+/+/requests';
const STATUS = 'arteria/v1/+/+/status';
/** Quiet time after which a draining ingest assumes the broker has sent it everything. */
const QUIET_MS = 300;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Ingest as an MQTT 5 client of a cluster broker. Ingest processes share the request
 * stream through a shared subscription; each request is acknowledged to the broker
 * (PUBACK) only after it is durably enqueued or answered with a rejection. The session
 * is persistent, so a request held by a process that dies before its PUBACK is delivered
 * again when that process (same client id) comes back.
 */
export class MqttIngestService {
  #state: MqttIngestState = 'starting';
  readonly #client: MqttClient;
  readonly #deps: MqttIngestDeps;
  readonly #stop = new AbortController();
  readonly #inHand = new Set<Promise<void>>();
  #handled = 0;
  #lastActivity = 0;
  #closing: Promise<void> | undefined;

  readonly #group: string;

  private constructor(client: MqttClient, deps: MqttIngestDeps, group: string) {
    this.#client = client;
    this.#deps = deps;
    this.#group = group;
  }

  #filters(): string[] {
    return [`$share/${this.#group}/${REQUESTS}`, `$share/${this.#group}/${STATUS}`];
  }

  static async start(options: MqttIngestOptions, deps: MqttIngestDeps): Promise<MqttIngestService> {
    const bound: { service?: MqttIngestService } = {};
    const clientOptions: IClientOptions = {
      protocolVersion: 5,
      clientId: options.clientId,
      username: options.username,
      password: options.password,
      clean: false,
      properties: { sessionExpiryInterval: options.sessionExpiryS },
      keepalive: options.keepaliveS,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      ...options.tls,
      // Called for every QoS 1 publish; the PUBACK goes out when `done` is called.
      customHandleAcks: (topic: string, payload: Buffer, _packet: unknown, done: (error: Error | number, code?: number) => void) => {
        const service = bound.service;
        if (service === undefined) return; // not acknowledged: redelivered on the next connection
        service.#receive(topic, payload, done);
      },
    };
    // The service exists before the connection does: a resumed session delivers the
    // requests it holds right after CONNACK, before any subscribe.
    const client = mqtt.connect(options.url, clientOptions);
    const service = new MqttIngestService(client, deps, options.sharedGroup);
    bound.service = service;
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      setNoDelay(client);
      client.on('connect', () => setNoDelay(client));
      client.on('error', (err) => deps.onError?.(err));
      const [requests = '', status = ''] = service.#filters();
      const granted = await client.subscribeAsync({ [requests]: { qos: 1 }, [status]: { qos: 0 } });
      const refused = granted.filter((g) => g.qos > 2);
      if (refused.length > 0) throw new ArteriaError('NOT_AUTHORIZED', `broker refused ingest subscriptions ${refused.map((g) => g.topic).join(', ')}`);
    } catch (err) {
      await client.endAsync(true);
      throw err;
    }
    client.on('message', (topic, payload, packet) => {
      if (packet.qos === 0) service.#status(topic, payload);
    });
    service.#state = 'running';
    return service;
  }

  get state(): MqttIngestState {
    return this.#state;
  }

  get connected(): boolean {
    return this.#client.connected;
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

  #receive(topic: string, payload: Buffer, done: (error: Error | number, code?: number) => void): void {
    if (this.#stop.signal.aborted) return; // giving up: leave it unacknowledged for the next session
    let parsed: ParsedTopic;
    try {
      parsed = parseDeviceTopic(topic);
    } catch (err) {
      // The broker ACL keeps devices on their own topics; anything else is dropped with a note.
      this.#deps.onError?.(toArteriaError(err));
      done(0);
      return;
    }
    const work = this.#admit(parsed, payload).then((acknowledge) => {
      if (acknowledge) {
        this.#handled += 1;
        done(0);
      }
    });
    this.#inHand.add(work);
    void work.finally(() => this.#inHand.delete(work));
  }

  /** Resolves true once the request is enqueued or answered; false when shutting down first. */
  async #admit(topic: ParsedTopic, payload: Buffer): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#deps.ingest.handle(topic, payload);
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

  /**
   * Scale-in: leaves the shared subscription (the broker sends new requests to the other
   * ingest processes), keeps admitting what the broker already sent this session until
   * quiet, then ends the session. If requests are still stuck after `timeoutMs` (queue
   * down) they stay unacknowledged and the session is kept, so the broker hands them back
   * when this instance returns. Idempotent.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'draining';
      const end = Date.now() + timeoutMs;
      if (this.#client.connected) {
        await this.#client.unsubscribeAsync(this.#filters()).catch((err: unknown) => this.#deps.onError?.(toArteriaError(err)));
      }
      this.#lastActivity = Date.now();
      while (Date.now() < end && (this.#inHand.size > 0 || Date.now() - this.#lastActivity < QUIET_MS)) await delay(20);
      const clean = this.#inHand.size === 0 && this.#client.connected;
      this.#stop.abort(); // retry loops give up: their requests stay with the broker
      await Promise.all([...this.#inHand]);
      await this.#client.endAsync(clean ? { properties: { sessionExpiryInterval: 0 } } : {});
      this.#state = 'stopped';
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
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

function setNoDelay(client: MqttClient): void {
  const stream = client.stream as { setNoDelay?: (flag: boolean) => void };
  stream.setNoDelay?.(true);
}
