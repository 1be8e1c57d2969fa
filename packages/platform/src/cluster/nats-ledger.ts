import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { ArteriaError, REQUEST_ID_PATTERN, RequestV1, ResultV1 } from '@arteria/protocol';
import type { AcceptedRequest, LedgerCounts, LedgerEntry, RequestLedger } from '../ledger/index.js';
import { ensureStream } from '../queue/nats-queue-setup.js';
import { NatsAuth, natsConnectAuth, natsConnectError } from '../queue/nats-auth.js';

const WRONG_LAST_SEQUENCE = 10071;

export const NatsRequestLedgerOptions = z.strictObject({
  servers: z.array(z.string().min(1)).min(1),
  /** Stream name; subjects are `arteria.ledger.{stream}.{requestId}.…`. */
  stream: z.string().regex(/^[A-Za-z0-9_-]{1,48}$/).default('ARTERIA_LEDGER'),
  /** How long entries are kept; 0 keeps them until an operator purges them. */
  retentionMs: z.number().int().min(0).default(0),
  replicas: z.number().int().min(1).max(5).default(1),
  requestTimeoutMs: z.number().int().min(100).default(5_000),
  connectionName: z.string().optional(),
  /** Credentials; none: the server's `no_auth_user`. */
  auth: NatsAuth.optional(),
});
export type NatsRequestLedgerOptions = z.input<typeof NatsRequestLedgerOptions>;

const Accepted = z.strictObject({ requestId: z.string(), tenant: z.string(), device: z.string(), algorithm: z.string(), acceptedAt: z.number(), request: RequestV1 });
const Completed = z.strictObject({ completedAt: z.number(), result: ResultV1 });

/**
 * The request ledger on NATS JetStream, shared by every ingest and worker process of a
 * multi-machine deployment. Each request has write-once subjects (`accepted`, `result`,
 * and a `status.{status}` marker for counting); "first write wins" is the server's
 * expected-last-subject-sequence check, so concurrent writers cannot overwrite.
 */
export class NatsRequestLedger implements RequestLedger, AsyncDisposable {
  #closing: Promise<void> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: Readonly<z.output<typeof NatsRequestLedgerOptions>>,
  ) {}

  static async open(input: NatsRequestLedgerOptions): Promise<NatsRequestLedger> {
    const parsed = NatsRequestLedgerOptions.safeParse(input);
    if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `NATS ledger option ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    const o = parsed.data;
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: o.servers, timeout: o.requestTimeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...(o.connectionName ? { name: o.connectionName } : {}), ...natsConnectAuth(o.auth) });
    } catch (err) {
      throw natsConnectError(o.servers, err);
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: o.requestTimeoutMs });
      const config = {
        name: o.stream,
        subjects: [`arteria.ledger.${o.stream.toLowerCase()}.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        num_replicas: o.replicas,
        max_age: o.retentionMs * 1_000_000,
      };
      await ensureStream(jsm, config);
      return new NatsRequestLedger(nc, jetstream(nc, { timeout: o.requestTimeoutMs }), jsm, o);
    } catch (err) {
      await nc.close();
      throw new ArteriaError('QUEUE_UNAVAILABLE', `cannot set up the JetStream ledger ${o.stream}: ${(err as Error).message}`, { cause: err });
    }
  }

  #subject(requestId: string, leaf: string): string {
    const token = REQUEST_ID_PATTERN.test(requestId) ? requestId : createHash('sha256').update(requestId).digest('hex');
    return `arteria.ledger.${this.options.stream.toLowerCase()}.${token}.${leaf}`;
  }

  /** Publishes once per subject; false when something was there already. */
  async #putOnce(subject: string, body: unknown): Promise<boolean> {
    try {
      await this.js.publish(subject, JSON.stringify(body), { expect: { lastSubjectSequence: 0 }, timeout: this.options.requestTimeoutMs });
      return true;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) return false;
      throw new ArteriaError('QUEUE_UNAVAILABLE', `ledger write ${subject}: ${(err as Error).message}`, { cause: err });
    }
  }

  async #read<T>(subject: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const stored = await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: subject });
    if (!stored) return undefined;
    const parsed = schema.safeParse(stored.json());
    if (!parsed.success) throw new ArteriaError('INTERNAL', `ledger entry ${subject} is not readable: ${parsed.error.message}`);
    return parsed.data;
  }

  async get(requestId: string): Promise<LedgerEntry | undefined> {
    const [accepted, completed] = await Promise.all([this.#read(this.#subject(requestId, 'accepted'), Accepted), this.#read(this.#subject(requestId, 'result'), Completed)]);
    if (completed) {
      const { result, completedAt } = completed;
      return { ...(accepted ?? { requestId, tenant: result.tenant, device: result.device }), state: 'completed', status: result.status, completedAt, result };
    }
    return accepted ? { ...accepted, state: 'accepted' } : undefined;
  }

  async recordAccepted(entry: AcceptedRequest): Promise<'new' | 'existing'> {
    return (await this.#putOnce(this.#subject(entry.requestId, 'accepted'), entry)) ? 'new' : 'existing';
  }

  async recordResult(result: ResultV1): Promise<void> {
    if (await this.#putOnce(this.#subject(result.requestId, 'result'), { completedAt: Date.now(), result })) {
      await this.#putOnce(this.#subject(result.requestId, `status.${result.status}`), {});
    }
  }

  /** Counted by the server (a filtered consumer's pending count); meant for dashboards, not hot paths. */
  async counts(): Promise<LedgerCounts> {
    const prefix = `arteria.ledger.${this.options.stream.toLowerCase()}.*`;
    const [accepted, ok, rejected, failed] = await Promise.all(['accepted', 'status.ok', 'status.rejected', 'status.failed'].map((leaf) => this.#count(`${prefix}.${leaf}`)));
    return { accepted: accepted ?? 0, completed: (ok ?? 0) + (rejected ?? 0) + (failed ?? 0), ok: ok ?? 0, rejected: rejected ?? 0, failed: failed ?? 0 };
  }

  async #count(filter: string): Promise<number> {
    const consumer = await this.jsm.consumers.add(this.options.stream, { filter_subject: filter, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 60_000_000_000 });
    try {
      return consumer.num_pending;
    } finally {
      await this.jsm.consumers.delete(this.options.stream, consumer.name);
    }
  }

  async recent(limit: number): Promise<LedgerEntry[]> {
    const info = await this.jsm.streams.info(this.options.stream);
    const ids: string[] = [];
    for (let seq = info.state.last_seq; seq >= info.state.first_seq && seq > 0 && ids.length < limit && info.state.last_seq - seq < limit * 4; seq--) {
      const stored = await this.jsm.streams.getMessage(this.options.stream, { seq });
      const id = stored?.subject.split('.')[3];
      if (id !== undefined && REQUEST_ID_PATTERN.test(id) && !ids.includes(id)) ids.push(id);
    }
    const entries = await Promise.all(ids.map((id) => this.get(id)));
    return entries.filter((e): e is LedgerEntry => e !== undefined);
  }

  async close(): Promise<void> {
    this.#closing ??= this.nc.close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
