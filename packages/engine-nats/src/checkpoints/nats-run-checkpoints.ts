import { createHash, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { z } from 'zod';
import { ArteriaError, Lifecycle } from '@arteria/protocol';
import { CheckpointMeta, TaskV1, type ObjectBucket, type ParkedStep, type RunCheckpoint, type RunCheckpointStore } from '@arteria/ports';
import { natsConnectAuth, natsConnectError, type NatsAuth } from '../queue/nats-auth.js';

export interface NatsRunCheckpointsOptions {
  servers: string[];
  /** Where states too large for a key-value entry are kept (the deployment's S3 bucket). */
  objects: ObjectBucket;
  /** The key-value bucket (default `ARTERIA_CHECKPOINTS`). */
  bucket?: string;
  /** Key prefix of the state objects in `objects` (default `_checkpoints/`). */
  objectPrefix?: string;
  /** States up to this size travel inside the entry (default 256 KiB, under nats-server's 1 MB max_payload with the rest). */
  inlineStateBytes?: number;
  connectionName?: string;
  auth?: NatsAuth;
  requestTimeoutMs?: number;
}

/** The entry of a run: the checkpoint's meta, the published count, and its state inline or the object holding it. */
const Entry = CheckpointMeta.extend({
  published: z.number().int().nonnegative(),
  state: z.union([z.strictObject({ inline: z.base64() }), z.strictObject({ object: z.string().min(1) })]),
});
type Entry = z.infer<typeof Entry>;

const ParkedSchema = TaskV1.shape.segmented.unwrap();
const idKey = (requestId: string): string => (/^[-_=a-zA-Z0-9]+$/.test(requestId) ? requestId : createHash('sha256').update(requestId).digest('hex'));
const runKey = (requestId: string): string => `run.${idKey(requestId)}`;
const parkKey = (requestId: string, key: number | 'end'): string => `park.${idKey(requestId)}.${String(key)}`;
const encoder = new TextEncoder();

/**
 * Checkpoints of segmented runs for workers on several machines: a JetStream key-value
 * bucket gives the compare-and-set the store's contract rests on (create fails when the
 * key exists, update names the revision it read), and the run's state, which can be tens
 * of megabytes (balloon-inflation keeps 64 KiB a frame), goes to the deployment's object
 * bucket when it is larger than a key-value entry may be. Each state object has a key of
 * its own, written before the entry that names it; the entry decides which one counts, so
 * a delivery that loses the race only leaves an object, which it deletes. A superseded
 * state is deleted once its successor stands; a reader that finds it gone reads again.
 */
export class NatsRunCheckpoints implements RunCheckpointStore {
  readonly #kv: KV;
  readonly #objects: ObjectBucket;
  readonly #prefix: string;
  readonly #inline: number;
  readonly #where: string;
  readonly #life = new Lifecycle('the run checkpoint store');

  private constructor(nc: NatsConnection, kv: KV, options: NatsRunCheckpointsOptions) {
    this.#kv = kv;
    this.#objects = options.objects;
    this.#prefix = options.objectPrefix ?? '_checkpoints/';
    this.#inline = options.inlineStateBytes ?? 256 * 1024;
    this.#where = options.servers.join(',');
    this.#life.defer('NATS connection', async () => {
      if (!nc.isClosed()) await nc.close();
    });
    this.#life.begin();
  }

  static async open(options: NatsRunCheckpointsOptions): Promise<NatsRunCheckpoints> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: options.servers, timeout: options.requestTimeoutMs ?? 5_000, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...(options.connectionName ? { name: options.connectionName } : {}), ...natsConnectAuth(options.auth) });
    } catch (err) {
      throw natsConnectError(options.servers, err);
    }
    try {
      const kv = await new Kvm(nc).create(options.bucket ?? 'ARTERIA_CHECKPOINTS', { history: 1 });
      return new NatsRunCheckpoints(nc, kv, options);
    } catch (err) {
      await nc.close();
      throw new ArteriaError('STORAGE_UNAVAILABLE', `cannot set up the JetStream checkpoint bucket: ${(err as Error).message}`, { cause: err });
    }
  }

  async get(requestId: string): Promise<RunCheckpoint | undefined> {
    // A state object deleted under the reader: its successor's entry stands by then.
    for (let attempt = 0; ; attempt++) {
      const read = await this.#read(requestId);
      if (read === undefined) return undefined;
      const state = await this.#state(read.entry.state);
      if (state !== undefined) {
        const { next, frames, headerSha256, segmentSha256s, algorithm, events, published } = read.entry;
        return { requestId, next, frames, headerSha256, segmentSha256s, algorithm, events, state, published };
      }
      if (attempt >= 4) throw new ArteriaError('STORAGE_UNAVAILABLE', `the state of run ${requestId}'s checkpoint is missing from ${this.#objects.location}`);
    }
  }

  async create(checkpoint: Omit<RunCheckpoint, 'published'>): Promise<boolean> {
    const entry = await this.#entry(checkpoint, 0);
    const key = runKey(checkpoint.requestId);
    try {
      await this.#call('write a checkpoint', () => this.#kv.create(key, entry.bytes));
      return true;
    } catch (err) {
      if ((await this.#read(checkpoint.requestId)) === undefined) throw err;
      await this.#drop(entry.object);
      return false;
    }
  }

  async advance(from: number, checkpoint: Omit<RunCheckpoint, 'published'>): Promise<boolean> {
    const stored = await this.#read(checkpoint.requestId);
    if (stored?.entry.next !== from) return false;
    const entry = await this.#entry(checkpoint, stored.entry.published);
    if (!(await this.#update(checkpoint.requestId, stored.revision, entry.bytes))) {
      await this.#drop(entry.object);
      return false;
    }
    if ('object' in stored.entry.state) await this.#drop(stored.entry.state.object);
    return true;
  }

  async markPublished(requestId: string, count: number): Promise<void> {
    for (;;) {
      const stored = await this.#read(requestId);
      if (stored === undefined || stored.entry.published >= count) return;
      const next: Entry = { ...stored.entry, published: count };
      if (await this.#update(requestId, stored.revision, encoder.encode(JSON.stringify(next)))) return;
    }
  }

  async park(requestId: string, step: ParkedStep): Promise<void> {
    const key = parkKey(requestId, step.phase === 'segment' ? step.index : 'end');
    try {
      await this.#call('keep a step', () => this.#kv.create(key, JSON.stringify(step)));
    } catch (err) {
      // The first kept under its key stands.
      if ((await this.#call('read a kept step', () => this.#kv.get(key)))?.operation !== 'PUT') throw err;
    }
  }

  async parked(requestId: string, key: number | 'end'): Promise<ParkedStep | undefined> {
    const entry = await this.#call('read a kept step', () => this.#kv.get(parkKey(requestId, key)));
    if (entry?.operation !== 'PUT') return undefined;
    const step = ParkedSchema.parse(entry.json());
    if (step.phase !== 'segment' && step.phase !== 'end') throw new ArteriaError('INTERNAL', `run ${requestId} has an ${step.phase} step kept under ${key}`);
    return step;
  }

  async remove(requestId: string): Promise<void> {
    const keys = await this.#call('list a run\'s kept steps', async () => {
      const found: string[] = [];
      for await (const key of await this.#kv.keys(`park.${idKey(requestId)}.>`)) found.push(key);
      return found;
    });
    await this.#call('remove a checkpoint', async () => {
      for (const key of [...keys, runKey(requestId)]) await this.#kv.purge(key);
    });
    for (const object of await this.#objects.list(`${this.#prefix}${idKey(requestId)}/`, '')) await this.#objects.delete(object);
  }

  /** Closes the connection; memoised. Afterwards every call fails with STORAGE_UNAVAILABLE, as a store that went away. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #read(requestId: string): Promise<{ entry: Entry; revision: number } | undefined> {
    const found: KvEntry | null = await this.#call('read a checkpoint', () => this.#kv.get(runKey(requestId)));
    if (found?.operation !== 'PUT') return undefined;
    return { entry: Entry.parse(found.json()), revision: found.revision };
  }

  /** The entry's bytes, the state written to its own object first when it is too large to travel inline. */
  async #entry(checkpoint: Omit<RunCheckpoint, 'published'>, published: number): Promise<{ bytes: Uint8Array; object?: string }> {
    const { next, frames, headerSha256, segmentSha256s, algorithm, events, state } = checkpoint;
    const meta = CheckpointMeta.parse({ next, frames, headerSha256, segmentSha256s, algorithm, events });
    let where: Entry['state'];
    let object: string | undefined;
    if (state.byteLength <= this.#inline) {
      where = { inline: Buffer.from(state.buffer, state.byteOffset, state.byteLength).toString('base64') };
    } else {
      object = `${this.#prefix}${idKey(checkpoint.requestId)}/${next}-${randomUUID()}`;
      await this.#objects.put(object, state, 'application/octet-stream');
      where = { object };
    }
    return { bytes: encoder.encode(JSON.stringify({ ...meta, published, state: where })), ...(object === undefined ? {} : { object }) };
  }

  async #state(where: Entry['state']): Promise<Uint8Array | undefined> {
    if ('inline' in where) return new Uint8Array(Buffer.from(where.inline, 'base64'));
    const bytes = await this.#objects.get(where.object);
    return bytes === undefined ? undefined : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Compare-and-set on the revision read: false when another writer got there first. */
  async #update(requestId: string, revision: number, bytes: Uint8Array): Promise<boolean> {
    try {
      await this.#call('write a checkpoint', () => this.#kv.update(runKey(requestId), bytes, revision));
      return true;
    } catch (err) {
      const now = await this.#read(requestId);
      if (now !== undefined && now.revision === revision) throw err;
      return false;
    }
  }

  async #drop(object: string | undefined): Promise<void> {
    if (object !== undefined) await this.#objects.delete(object);
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (!this.#life.running) throw new ArteriaError('STORAGE_UNAVAILABLE', `cannot ${what}: the run checkpoint store is ${this.#life.state}`, { cause: this.#life.illegal(what) });
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      throw new ArteriaError('STORAGE_UNAVAILABLE', `cannot ${what}: NATS JetStream at ${this.#where} did not answer (${(err as Error).message})`, { cause: err });
    }
  }
}
