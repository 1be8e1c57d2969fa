import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager, type JsMsg, type StreamConfig } from '@nats-io/jetstream';
import { ArteriaError, parseDeviceTopic, toArteriaError, type ParsedTopic } from '@arteria/protocol';
import { IngestTransport, type DeviceDirectory, type IngestHandler } from '@arteria/ports';
import { ensureStream } from '../queue/nats-queue-setup.js';
import { natsConnectAuth, natsConnectError, type NatsAuth } from '../queue/nats-auth.js';
import type { Logger } from '@arteria/telemetry';
import { JS_ERROR, isJetStreamError, nanos } from '../jetstream.js';

export interface NatsCaptureIngestOptions {
  servers: string[];
  /** Capture stream on `arteria.v1.*.*.requests` (what devices publish over NATS's MQTT listener). */
  stream: string;
  /** Durable pull consumer every ingest process shares (the stream's requests are spread across them). */
  consumer: string;
  replicas: number;
  /** Requests older than this are dropped by the stream; the gateway resends what got no result. */
  maxAgeMs: number;
  /** How long a delivered request may stay unacknowledged before the server hands it to another ingest. */
  ackWaitMs: number;
  /** Requests one process admits at once. */
  maxInHand: number;
  connectionName?: string;
  /** Credentials; none: the server's `no_auth_user`. */
  auth?: NatsAuth;
}

export interface NatsCaptureIngestDeps {
  ingest: IngestHandler;
  devices?: DeviceDirectory;
  onError?: (error: Error) => void;
  /** The process's logger: connection events (disconnect, reconnect). */
  logger?: Logger;
}

/** NATS subjects of what devices publish over MQTT (`/` in a topic is `.` in a subject). */
export const CAPTURE_REQUESTS_SUBJECT = 'arteria.v1.*.*.requests';
const STATUS_SUBJECT = 'arteria.v1.*.*.status';

/** `arteria.v1.t.d.requests` -> `arteria/v1/t/d/requests` (an MQTT topic's `.` arrives as `//` and fails parsing). */
export const subjectToTopic = (subject: string): string => subject.split('.').join('/');

/**
 * Ingest from a JetStream stream that captures device requests published into NATS's MQTT
 * listener. A durable pull consumer (explicit ack) spreads requests across ingest
 * processes; a request is acknowledged to the stream only after it is durably enqueued or
 * answered with a rejection. Retryable failures (queue down) are nak'ed with a back-off, so
 * the stream keeps the request and delivers it again. The subject carries the device id,
 * which NATS permissions tie to the device's account: it is trusted as the MQTT topic is.
 */
export class NatsCaptureIngestService extends IngestTransport {
  readonly #nc: NatsConnection;
  readonly #deps: NatsCaptureIngestDeps;
  readonly #inHand = new Set<Promise<void>>();
  /** The last message in hand per subject (one device), which the next one of that subject waits for. */
  readonly #lastOf = new Map<string, Promise<void>>();
  #messages: ConsumerMessages | undefined;
  #handled = 0;
  #connected = true;

  private constructor(nc: NatsConnection, deps: NatsCaptureIngestDeps) {
    super('NATS capture ingest');
    this.#nc = nc;
    this.#deps = deps;
  }

  static async start(options: NatsCaptureIngestOptions, deps: NatsCaptureIngestDeps): Promise<NatsCaptureIngestService> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: options.servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...(options.connectionName ? { name: options.connectionName } : {}), ...natsConnectAuth(options.auth) });
    } catch (err) {
      throw natsConnectError(options.servers, err);
    }
    const service = new NatsCaptureIngestService(nc, deps);
    // A start that fails closes the connection (a failure to set up is QUEUE_UNAVAILABLE).
    await service.life.start(async () => {
      service.life.defer('NATS connection', async () => {
        if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
      });
      let messages: ConsumerMessages;
      try {
        const jsm = await jetstreamManager(nc);
        await provisionCapture(jsm, options);
        const consumer = await jetstream(nc).consumers.get(options.stream, options.consumer);
        messages = await consumer.consume({ max_messages: options.maxInHand });
        const status = nc.subscribe(STATUS_SUBJECT, { callback: (err, msg) => (err ? deps.onError?.(err) : service.#recordStatus(msg.subject, Buffer.from(msg.data))) });
        service.life.defer('status subscription', () => status.unsubscribe());
      } catch (err) {
        throw err instanceof ArteriaError ? err : new ArteriaError('QUEUE_UNAVAILABLE', `cannot set up the request capture stream ${options.stream}: ${(err as Error).message}`, { cause: err });
      }
      const loop = service.#run(messages, options.maxInHand).catch((err: unknown) => deps.onError?.(toArteriaError(err)));
      service.life.defer('request loop', async () => {
        await messages.close();
        await loop;
      });
      service.#messages = messages;
      void service.#watchConnection();
    });
    return service;
  }

  get connected(): boolean {
    return this.#connected && !this.#nc.isClosed();
  }

  /** Able to admit: JetStream delivers to this process while its NATS connection is up. */
  get ready(): boolean {
    return this.connected;
  }

  /** Requests handled (accepted, duplicate or rejected) by this process. */
  get handled(): number {
    return this.#handled;
  }

  async #run(messages: ConsumerMessages, maxInHand: number): Promise<void> {
    for await (const msg of messages) {
      // Draining (or closing): the loop starts before `running`, so `starting` takes requests too.
      if (this.life.state !== 'starting' && this.life.state !== 'running') {
        msg.nak(); // back to the stream at once, for another ingest process
        continue;
      }
      // One device's messages in the order the stream holds them (a run's open before its
      // segments, or the segment is refused RUN_NOT_OPEN); other devices' side by side.
      const subject = msg.subject;
      const work = (this.#lastOf.get(subject) ?? Promise.resolve()).then(() => this.#receive(msg)).catch((err: unknown) => this.#deps.onError?.(toArteriaError(err)));
      this.#lastOf.set(subject, work);
      this.#inHand.add(work);
      void work.finally(() => {
        this.#inHand.delete(work);
        if (this.#lastOf.get(subject) === work) this.#lastOf.delete(subject);
      });
      // consume() already bounds what the server sends; this bounds the work in hand.
      while (this.#inHand.size >= maxInHand) await Promise.race(this.#inHand);
    }
  }

  /** Readiness follows the connection: down while the client reconnects. */
  async #watchConnection(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === 'disconnect') {
        this.#connected = false;
        this.#deps.logger?.warn({ component: 'nats-capture-ingest', server: status.server }, `NATS ${status.server}: disconnected; requests wait in the capture stream until it is back (is nats-server running?)`);
      } else if (status.type === 'reconnect') {
        this.#connected = true;
        this.#deps.logger?.info({ component: 'nats-capture-ingest', server: status.server }, `NATS ${status.server}: reconnected; the durable consumer resumes delivery`);
      }
    }
  }

  async #receive(msg: JsMsg): Promise<void> {
    let topic: ParsedTopic;
    try {
      topic = parseDeviceTopic(subjectToTopic(msg.subject));
    } catch (err) {
      // Device permissions keep devices on their own subjects; anything else is dropped with a note.
      this.#deps.onError?.(toArteriaError(err));
      msg.term();
      return;
    }
    try {
      // Stored-at time: a copy the stream held since before the result went out is not answered again.
      await this.#deps.ingest.handle(topic, Buffer.from(msg.data), { receivedAt: msg.time.getTime() });
      this.#handled += 1;
      msg.ack();
    } catch (err) {
      // Retryable (queue unavailable): the stream keeps the request and delivers it again.
      this.#deps.onError?.(toArteriaError(err));
      msg.nak(Math.min(5_000, 100 * 2 ** Math.min(msg.info.deliveryCount, 10)));
    }
  }

  #recordStatus(subject: string, payload: Buffer): void {
    try {
      this.#deps.devices?.record(parseDeviceTopic(subjectToTopic(subject)), payload);
    } catch (err) {
      this.#deps.onError?.(toArteriaError(err));
    }
  }

  /**
   * Scale-in: stops pulling (messages the consumer already holds go back to the stream at
   * once) and finishes the requests in hand, their acks going out, for up to `timeoutMs`.
   * Requests still in hand after it stay unacknowledged: the server redelivers them after
   * the ack wait.
   */
  protected async settle(timeoutMs: number): Promise<void> {
    await this.#messages?.close();
    const end = Date.now() + timeoutMs;
    while (this.#inHand.size > 0 && Date.now() < end) await Promise.race([...this.#inHand, delay(Math.max(1, end - Date.now()))]);
  }
}

/** Creates the capture stream and its consumer, or updates them to the options. Safe from every process. */
export async function provisionCapture(jsm: JetStreamManager, o: NatsCaptureIngestOptions): Promise<void> {
  const config: Partial<StreamConfig> & { name: string } = {
    name: o.stream,
    subjects: [CAPTURE_REQUESTS_SUBJECT],
    // A request leaves the stream when an ingest acknowledges it.
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: o.replicas,
    max_age: nanos(o.maxAgeMs),
    // When full, refuse new requests rather than drop stored ones; the gateway resends.
    discard: DiscardPolicy.New,
  };
  await ensureStream(jsm, config);
  // The server never gives up on a request: a request that cannot be admitted is answered with a rejection.
  const settings = { ack_wait: nanos(o.ackWaitMs), max_deliver: -1, max_ack_pending: -1 };
  try {
    await jsm.consumers.info(o.stream, o.consumer);
    await jsm.consumers.update(o.stream, o.consumer, settings);
  } catch (err) {
    if (!isJetStreamError(err, JS_ERROR.consumerNotFound)) throw err;
    await jsm.consumers.add(o.stream, { ...settings, durable_name: o.consumer, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
  }
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
