import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { ArteriaError, Lifecycle } from '@arteria/protocol';
import { DesiredWorkers, ROSTER_STALE_AFTER_MS, WorkerHeartbeat, checkedRosterEntry, type RosterView, type WorkerRoster } from '@arteria/ports';
import { natsConnectAuth, natsConnectError, natsOutageError, type NatsAuth } from '../queue/nats-auth.js';

export interface NatsWorkerRosterOptions {
  servers: string[];
  /** The key-value bucket (default `ARTERIA_ROSTER`). */
  bucket?: string;
  staleAfterMs?: number;
  connectionName?: string;
  auth?: NatsAuth;
  requestTimeoutMs?: number;
}

/** NATS key names: `[-/_=.a-zA-Z0-9]`; an instance id with other characters is keyed by its hash. */
const keyOf = (kind: 'worker' | 'desired', id: string): string => `${kind}.${/^[-_=a-zA-Z0-9]+$/.test(id) ? id : createHash('sha256').update(id).digest('hex').slice(0, 32)}`;

/**
 * The worker roster in a JetStream key-value bucket, for roles across machines. The
 * bucket keeps one value per key and drops values older than the stale age itself (its
 * TTL), so a worker that died without a goodbye disappears even when nobody reads.
 */
export class NatsWorkerRoster implements WorkerRoster {
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #bucket: string;
  readonly #servers: string[];
  readonly #staleAfterMs: number;
  readonly #life = new Lifecycle('the worker roster');

  private constructor(nc: NatsConnection, kv: KV, jsm: JetStreamManager, bucket: string, servers: string[], staleAfterMs: number) {
    this.#kv = kv;
    this.#jsm = jsm;
    this.#bucket = bucket;
    this.#servers = servers;
    this.#staleAfterMs = staleAfterMs;
    this.#life.defer('NATS connection', async () => {
      if (!nc.isClosed()) await nc.close();
    });
    this.#life.begin();
  }

  static async open(options: NatsWorkerRosterOptions): Promise<NatsWorkerRoster> {
    const staleAfterMs = options.staleAfterMs ?? ROSTER_STALE_AFTER_MS;
    const timeout = options.requestTimeoutMs ?? 5_000;
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: options.servers, timeout, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...(options.connectionName ? { name: options.connectionName } : {}), ...natsConnectAuth(options.auth) });
    } catch (err) {
      throw natsConnectError(options.servers, err);
    }
    try {
      const bucket = options.bucket ?? 'ARTERIA_ROSTER';
      const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: staleAfterMs });
      return new NatsWorkerRoster(nc, kv, await jetstreamManager(nc, { timeout }), bucket, options.servers, staleAfterMs);
    } catch (err) {
      await nc.close();
      throw new ArteriaError('QUEUE_UNAVAILABLE', `cannot set up the JetStream roster bucket: ${(err as Error).message}`, { cause: err });
    }
  }

  async beat(worker: WorkerHeartbeat): Promise<void> {
    this.#life.assertRunning('record a heartbeat');
    return this.#put(keyOf('worker', worker.instanceId), checkedRosterEntry(WorkerHeartbeat, worker));
  }

  async leave(instanceId: string): Promise<void> {
    this.#life.assertRunning('remove a worker');
    try {
      await this.#kv.delete(keyOf('worker', instanceId));
    } catch (err) {
      throw natsOutageError(this.#servers, 'roster delete', err);
    }
  }

  async recordDesired(desired: DesiredWorkers): Promise<void> {
    this.#life.assertRunning('record a desired count');
    return this.#put(keyOf('desired', desired.pool), checkedRosterEntry(DesiredWorkers, desired));
  }

  async read(now = Date.now()): Promise<RosterView> {
    this.#life.assertRunning('read the roster');
    const view: RosterView = { workers: [], desired: [] };
    try {
      for (const key of await this.#keys()) {
        const entry = await this.#kv.get(key);
        if (entry === null || entry.operation !== 'PUT') continue;
        const body: unknown = entry.json();
        if (key.startsWith('worker.')) {
          const beat = WorkerHeartbeat.safeParse(body);
          if (beat.success && now - beat.data.at <= this.#staleAfterMs) view.workers.push(beat.data);
        } else if (key.startsWith('desired.')) {
          const desired = DesiredWorkers.safeParse(body);
          if (desired.success && now - desired.data.at <= this.#staleAfterMs) view.desired.push(desired.data);
        }
      }
    } catch (err) {
      throw natsOutageError(this.#servers, 'roster read', err);
    }
    return view;
  }

  /**
   * The bucket's keys, from its stream's subject index in one request (with the request
   * timeout). `kv.keys()` ends only when it sees the message that leaves nothing pending, and
   * that message can expire (the bucket's TTL) or be replaced by a newer heartbeat while it
   * is read: the read then waited for the consumer's idle heartbeat, past callers' timeouts.
   */
  async #keys(): Promise<string[]> {
    const prefix = `$KV.${this.#bucket}.`;
    const info = await this.#jsm.streams.info(`KV_${this.#bucket}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length)).sort();
  }

  /** Closes the connection; memoised. Afterwards every call fails with ILLEGAL_STATE. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #put(key: string, body: WorkerHeartbeat | DesiredWorkers): Promise<void> {
    try {
      await this.#kv.put(key, JSON.stringify(body));
    } catch (err) {
      throw natsOutageError(this.#servers, 'roster write', err);
    }
  }
}
