import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { ArteriaError, REQUEST_ID_PATTERN, RequestV1, ResultV1, Lifecycle } from '@arteria/protocol';
import { type AcceptedRequest, type AuditSource, type Checkpoint, type ChainRecord, type IndexEntry, type LedgerCounts, type LedgerEntry, type RecordedResult, type RequestLedger, type ResultProvenance, LedgerSigner, acceptedBody, bodyHashOf, completedBody, nextRecord, type ChainKind, entryDefect, CheckedEntries } from '@arteria/ports';
import { ensureStream } from '../queue/nats-queue-setup.js';
import { NatsAuth, natsConnectAuth, natsConnectError, natsOutageError } from '../queue/nats-auth.js';
import { JS_ERROR, isJetStreamError, nanos } from '../jetstream.js';

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
  /** Signs chain records and checkpoints; none: the chain is kept unsigned. */
  signer: z.instanceof(LedgerSigner).optional(),
  /** A signed checkpoint of the chain's head at this interval when it moved (0: only at close). */
  checkpointIntervalMs: z.number().int().min(0).default(60_000),
});
export type NatsRequestLedgerOptions = z.input<typeof NatsRequestLedgerOptions>;

/** Where an entry's chain record is: its stream sequence and hash. */
const ChainRef = z.strictObject({ streamSeq: z.number().int().positive(), hash: z.string() });
const Accepted = z.strictObject({ requestId: z.string(), tenant: z.string(), device: z.string(), algorithm: z.string(), acceptedAt: z.number(), request: RequestV1, chained: ChainRef.optional() });
const Published = z.strictObject({ at: z.number() });
const Replayed = z.strictObject({ dedupeId: z.string() });
const Completed = z.strictObject({ completedAt: z.number(), result: ResultV1, chained: ChainRef.optional() });
const StoredRecord = z.strictObject({
  seq: z.number().int().positive(),
  kind: z.enum(['accepted', 'completed']),
  requestId: z.string(),
  recordedAt: z.number(),
  worker: z.string().optional(),
  body: z.string(),
  bodyHash: z.string(),
  prevHash: z.string(),
  hash: z.string(),
  signature: z.string().optional(),
});
const StoredCheckpoint = z.strictObject({ seq: z.number(), hash: z.string(), signedAt: z.number(), keyId: z.string(), publicKey: z.string(), signature: z.string() });
/** Chain appends that lost the race to another writer are retried this often before giving up. */
const MAX_APPEND_ATTEMPTS = 50;

/**
 * The request ledger on NATS JetStream, shared by every ingest and worker process of a
 * multi-machine deployment. Each request has write-once subjects (`accepted`, `result`,
 * and a `status.{status}` marker for counting); "first write wins" is the server's
 * expected-last-subject-sequence check, so concurrent writers cannot overwrite.
 * The hash chain is one subject (`_chain`): an append names the subject sequence it
 * extends, so writers on any machine form one chain; each entry names its chain record.
 */
export class NatsRequestLedger implements RequestLedger, AsyncDisposable {
  readonly #life = new Lifecycle('NATS request ledger');
  /** Record signatures verified once (or made here) are not verified again on each lookup. */
  readonly #checked = new CheckedEntries();
  #verifyRecord: ((hash: string, signature: string) => boolean) | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #checkpointing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: Readonly<z.output<typeof NatsRequestLedgerOptions>>,
  ) {
    // Closed last-registered-first: periodic checkpoints stop (one in flight finishes), a
    // last checkpoint is signed, the connection closes.
    this.#life.defer('connection', () => nc.close());
    this.#life.defer('final checkpoint', () => this.#checkpoint());
    this.#life.defer('periodic checkpoints', async () => {
      clearInterval(this.#checkpointTimer);
      await this.#checkpointing;
    });
    this.#life.begin();
  }

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
        max_age: nanos(o.retentionMs),
      };
      await ensureStream(jsm, config);
      const ledger = new NatsRequestLedger(nc, jetstream(nc, { timeout: o.requestTimeoutMs }), jsm, o);
      if (o.signer !== undefined && o.checkpointIntervalMs > 0) {
        ledger.#checkpointTimer = setInterval(() => ledger.#queueCheckpoint(), o.checkpointIntervalMs).unref();
      }
      return ledger;
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
      if (isJetStreamError(err, JS_ERROR.wrongLastSequence)) return false;
      throw natsOutageError(this.options.servers, `ledger write ${subject}`, err);
    }
  }

  async #read<T>(subject: string, schema: z.ZodType<T>): Promise<T | undefined> {
    let stored: Awaited<ReturnType<JetStreamManager['streams']['getMessage']>>;
    try {
      stored = await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: subject });
    } catch (err) {
      throw natsOutageError(this.options.servers, `ledger read ${subject}`, err);
    }
    if (!stored) return undefined;
    const parsed = schema.safeParse(stored.json());
    if (!parsed.success) throw new ArteriaError('INTERNAL', `ledger entry ${subject} is not readable: ${parsed.error.message}`);
    return parsed.data;
  }

  async get(requestId: string): Promise<LedgerEntry | undefined> {
    this.#assertOpen();
    const [accepted, completed] = await Promise.all([this.#read(this.#subject(requestId, 'accepted'), Accepted), this.#read(this.#subject(requestId, 'result'), Completed)]);
    if (accepted) await this.#checkChained(requestId, 'accepted', bodyHashOf(acceptedBody(accepted)), accepted.chained);
    if (completed) {
      const bodyHash = bodyHashOf(completedBody(completed.result));
      await this.#checkChained(requestId, 'completed', bodyHash, completed.chained);
      const { completedAt } = completed;
      // Only a completed entry can have been published: admission's lookups of new requests skip the read.
      const [published, replay] = await Promise.all([this.#read(this.#subject(requestId, 'published'), Published), this.#read(this.#subject(requestId, 'replay'), Replayed)]);
      const result = { ...completed.result, recordHash: bodyHash };
      const { chained: _ref, ...request } = accepted ?? { requestId, tenant: result.tenant, device: result.device };
      return { ...request, state: 'completed', status: result.status, completedAt, result, ...(published && { publishedAt: published.at }), ...(replay && { replayedAs: replay.dedupeId }) };
    }
    if (!accepted) return undefined;
    const { chained: _ref, ...entry } = accepted;
    return { ...entry, state: 'accepted' };
  }

  /** An entry is served only when the chain record it names exists, is intact and holds what it holds. */
  async #checkChained(requestId: string, kind: ChainKind, bodyHash: string, ref: z.infer<typeof ChainRef> | undefined): Promise<void> {
    let record: ChainRecord | undefined;
    if (ref !== undefined) {
      const stored = await this.jsm.streams.getMessage(this.options.stream, { seq: ref.streamSeq });
      const parsed = stored?.subject === this.#chainSubject ? StoredRecord.safeParse(stored.json()) : undefined;
      record = parsed?.success === true && parsed.data.hash === ref.hash && parsed.data.requestId === requestId && parsed.data.kind === kind ? parsed.data : undefined;
    }
    const signer = this.options.signer;
    if (signer !== undefined) this.#verifyRecord ??= this.#checked.verifier(signer.recordVerifier);
    const defect = entryDefect(kind, bodyHash, record, undefined, this.#verifyRecord);
    if (defect !== undefined) throw new ArteriaError('LEDGER_TAMPERED', `ledger entry of request ${requestId}: ${defect}; run arteria audit verify`);
  }

  get #chainSubject(): string {
    return `arteria.ledger.${this.options.stream.toLowerCase()}._chain`;
  }

  get #checkpointSubject(): string {
    return `arteria.ledger.${this.options.stream.toLowerCase()}._checkpoint`;
  }

  /** Appends to the chain after its current head; retried when another writer got there first. */
  async #append(fields: Pick<ChainRecord, 'kind' | 'requestId' | 'recordedAt' | 'body'> & { worker?: string | undefined }): Promise<z.infer<typeof ChainRef>> {
    const signer = this.options.signer;
    for (let attempt = 1; ; attempt++) {
      const head = await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: this.#chainSubject });
      const previous = head === null ? undefined : StoredRecord.parse(head.json());
      const record = nextRecord(previous, fields, signer && ((hash) => signer.signRecord(hash)));
      try {
        const ack = await this.js.publish(this.#chainSubject, JSON.stringify(record), { expect: { lastSubjectSequence: head?.seq ?? 0 }, timeout: this.options.requestTimeoutMs });
        if (record.signature !== undefined) this.#checked.rememberSignature(record.hash, record.signature);
        return { streamSeq: ack.seq, hash: record.hash };
      } catch (err) {
        if (!isJetStreamError(err, JS_ERROR.wrongLastSequence) || attempt >= MAX_APPEND_ATTEMPTS) {
          throw new ArteriaError('QUEUE_UNAVAILABLE', `ledger chain append: ${(err as Error).message}`, { cause: err });
        }
      }
    }
  }

  async recordAccepted(entry: AcceptedRequest): Promise<'new' | 'existing'> {
    this.#assertOpen();
    const subject = this.#subject(entry.requestId, 'accepted');
    // A resend (the common case) adds nothing to the chain.
    if (await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: subject })) return 'existing';
    const { requestId, tenant, device, algorithm, acceptedAt, request } = entry;
    const chained = await this.#append({ kind: 'accepted', requestId, recordedAt: acceptedAt, body: acceptedBody(entry) });
    // Lost a race to another writer: its record stands, ours stays in the chain unreferenced.
    return (await this.#putOnce(subject, { requestId, tenant, device, algorithm, acceptedAt, request, chained })) ? 'new' : 'existing';
  }

  async recordResult(result: ResultV1, provenance: ResultProvenance = {}): Promise<RecordedResult> {
    this.#assertOpen();
    const subject = this.#subject(result.requestId, 'result');
    if (!(await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: subject }))) {
      const completedAt = Date.now();
      const body = completedBody(result);
      const chained = await this.#append({ kind: 'completed', requestId: result.requestId, recordedAt: completedAt, body, worker: provenance.worker });
      if (await this.#putOnce(subject, { completedAt, result, chained })) {
        await this.#putOnce(this.#subject(result.requestId, `status.${result.status}`), {});
        return { recorded: true, result: { ...result, recordHash: bodyHashOf(body) }, completedAt };
      }
    }
    // Another result was recorded first: it stands, and is served only once it checks out.
    const standing = await this.get(result.requestId);
    if (standing?.state !== 'completed') throw new ArteriaError('INTERNAL', `ledger: request ${result.requestId} has no recorded result after recording one`);
    return { recorded: false, result: standing.result, completedAt: standing.completedAt, ...(standing.publishedAt !== undefined && { publishedAt: standing.publishedAt }) };
  }

  async markPublished(requestId: string, at: number): Promise<void> {
    this.#assertOpen();
    await this.#putOnce(this.#subject(requestId, 'published'), { at });
  }

  async noteReplay(requestId: string, dedupeId: string): Promise<void> {
    this.#assertOpen();
    // Not write-once: a replay's task that is dead-lettered again may be replayed again; the newest stands.
    const subject = this.#subject(requestId, 'replay');
    try {
      await this.js.publish(subject, JSON.stringify({ dedupeId }), { timeout: this.options.requestTimeoutMs });
    } catch (err) {
      throw natsOutageError(this.options.servers, `ledger write ${subject}`, err);
    }
  }

  /** The last periodic checkpoint's failure, if it failed (retried at the next interval and at close). */
  lastCheckpointError: Error | undefined;

  #queueCheckpoint(): void {
    this.#checkpointing = this.#checkpointing.then(
      () => this.#checkpoint().then(() => (this.lastCheckpointError = undefined)),
      (err: unknown) => {
        this.lastCheckpointError = err as Error;
      },
    ).then(() => undefined, (err: unknown) => {
      this.lastCheckpointError = err as Error;
    });
  }

  /** Signs the chain's head unless the newest checkpoint already covers it. */
  async #checkpoint(): Promise<void> {
    const signer = this.options.signer;
    if (signer === undefined) return;
    const head = await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: this.#chainSubject });
    if (head === null) return;
    const record = StoredRecord.parse(head.json());
    const last = await this.jsm.streams.getMessage(this.options.stream, { last_by_subj: this.#checkpointSubject });
    if (last !== null && StoredCheckpoint.parse(last.json()).seq >= record.seq) return;
    await this.js.publish(this.#checkpointSubject, JSON.stringify(signer.sign(record.seq, record.hash, Date.now())), { timeout: this.options.requestTimeoutMs });
  }

  /** The chain, checkpoints and entries as stored, for `arteria audit`. */
  auditSource(): AuditSource {
    const prefix = `arteria.ledger.${this.options.stream.toLowerCase()}`;
    return {
      chain: () => this.#readAll(this.#chainSubject, (json) => StoredRecord.parse(json)),
      checkpoints: async () => {
        const out: Checkpoint[] = [];
        for await (const c of this.#readAll(this.#checkpointSubject, (json) => StoredCheckpoint.parse(json))) out.push(c);
        return out;
      },
      chainOf: async (requestId) => {
        const out: ChainRecord[] = [];
        for await (const r of this.#readAll(this.#chainSubject, (json) => StoredRecord.parse(json))) if (r.requestId === requestId) out.push(r);
        return out;
      },
      index: () => this.#indexEntries(prefix),
    };
  }

  async *#indexEntries(prefix: string): AsyncGenerator<IndexEntry> {
    for await (const e of this.#readAll(`${prefix}.*.accepted`, (json) => Accepted.parse(json))) {
      yield { requestId: e.requestId, kind: 'accepted', bodyHash: bodyHashOf(acceptedBody(e)), ...(e.chained ? { recordHash: e.chained.hash } : {}) };
    }
    for await (const e of this.#readAll(`${prefix}.*.result`, (json) => Completed.parse(json))) {
      yield { requestId: e.result.requestId, kind: 'completed', bodyHash: bodyHashOf(completedBody(e.result)), ...(e.chained ? { recordHash: e.chained.hash } : {}) };
    }
  }

  /** Every message on `filter`, in stream order, through an ordered consumer. */
  async *#readAll<T>(filter: string, parse: (json: unknown) => T): AsyncGenerator<T> {
    const total = await this.#count(filter);
    if (total === 0) return;
    const consumer = await this.js.consumers.get(this.options.stream, { filter_subjects: filter });
    const messages = await consumer.consume();
    try {
      let n = 0;
      for await (const m of messages) {
        yield parse(m.json());
        if (++n >= total || m.info.pending === 0) break;
      }
    } finally {
      await messages.close();
    }
  }

  /** Counted by the server (a filtered consumer's pending count); meant for dashboards, not hot paths. */
  async counts(): Promise<LedgerCounts> {
    this.#assertOpen();
    const prefix = `arteria.ledger.${this.options.stream.toLowerCase()}.*`;
    const [accepted, ok, rejected, failed] = await Promise.all(['accepted', 'status.ok', 'status.rejected', 'status.failed'].map((leaf) => this.#count(`${prefix}.${leaf}`)));
    return { accepted: accepted ?? 0, completed: (ok ?? 0) + (rejected ?? 0) + (failed ?? 0), ok: ok ?? 0, rejected: rejected ?? 0, failed: failed ?? 0 };
  }

  async #count(filter: string): Promise<number> {
    const consumer = await this.jsm.consumers.add(this.options.stream, { filter_subject: filter, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: nanos(60_000) });
    try {
      return consumer.num_pending;
    } finally {
      await this.jsm.consumers.delete(this.options.stream, consumer.name);
    }
  }

  async recent(limit: number): Promise<LedgerEntry[]> {
    this.#assertOpen();
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

  /** Signs a last checkpoint and closes the connection; memoised (CLOSE_FAILED names each failed step). */
  close(): Promise<void> {
    return this.#life.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A closed ledger answers with a typed error, never the NATS client's own. */
  #assertOpen(): void {
    this.#life.assertRunning('use it');
  }
}
