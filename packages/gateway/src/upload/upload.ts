import { createHash, randomUUID } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { ArteriaError, epochNow } from '@arteria/protocol';
import type { BandwidthLimiter } from './bandwidth.js';
import { MIN_PART_SIZE_BYTES } from '../config/config.js';
import { s3PartStore, type PartStore, type StoredPart } from './part-store.js';
import { memoryJournal, type UploadJournalPort, type UploadRecord } from '../outbox/upload-journal.js';
import { putOnce } from './put-once.js';
import { etagDigest, etagIsDigestOf } from './etag.js';

export interface UploadTarget {
  bucket: string;
  key: string;
  /** A file path (read part by part, never whole) or bytes already in memory. */
  source: string | Uint8Array;
}

export interface UploadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** Multipart part number that just completed; undefined for a single-request upload. */
  part?: number;
  /** True when the store already held this part (an upload resumed after a restart): nothing was sent. */
  resumed?: boolean;
}

export interface UploadOptions {
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
  partSizeBytes?: number;
  /** Parts in flight at once. */
  concurrency?: number;
  /** Shared upload bandwidth cap (bytes sent, not bytes the store already held). */
  limiter?: BandwidthLimiter;
  /** Where the upload id and confirmed parts are kept, keyed by `entryId`; default: this call only. */
  journal?: UploadJournalPort;
  entryId?: string;
}

export interface UploadedObject {
  /** `s3://bucket/key` */
  uri: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes that were uploaded. */
  sha256: string;
}

/**
 * Object key of a run: `{tenant}/{device}/{instanceUid}/{entryId}.dcm`. The outbox entry
 * id is fixed when the run is accepted, before any byte is read, so the upload streams
 * without a separate hashing pass, and every retry (also after a restart) overwrites the
 * same object instead of leaving copies behind.
 */
export const runObjectKey = (parts: { tenant: string; device: string; instanceUid: string; entryId: string }): string =>
  `${parts.tenant}/${parts.device}/${parts.instanceUid}/${parts.entryId}.dcm`;

/** Uploads a run with an S3 client holding credentials (see `uploadToStore`). */
export function uploadRun(client: S3Client, target: UploadTarget, options: UploadOptions = {}): Promise<UploadedObject> {
  return uploadToStore(s3PartStore(client, target.bucket), target, options);
}

/** Bytes of a run, read part by part. */
interface PartSource {
  size: number;
  /** `into`: a buffer to read into (at least `length` bytes); the bytes may also be a view of the source's own. */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** The bytes are in memory already: read() gives views of them and needs no buffer. */
  inMemory: boolean;
  close(): Promise<void>;
}

async function openSource(source: string | Uint8Array): Promise<PartSource> {
  if (typeof source !== 'string') {
    const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return { size: bytes.length, inMemory: true, read: (offset, length) => Promise.resolve(bytes.subarray(offset, offset + length)), close: () => Promise.resolve() };
  }
  let handle: FileHandle;
  try {
    handle = await open(source, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ArteriaError('INPUT_NOT_FOUND', `run file ${source} does not exist`, { cause: err });
    throw new ArteriaError('UPLOAD_FAILED', `cannot read run file ${source}: ${(err as Error).message}`, { cause: err });
  }
  const { size } = await handle.stat();
  return {
    size,
    inMemory: false,
    async read(offset, length, into) {
      const buffer = into === undefined ? Buffer.allocUnsafe(length) : into.subarray(0, length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) throw new ArteriaError('UPLOAD_FAILED', `run file ${source} shrank while it was uploaded`);
        filled += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');
const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** S3's ETag of a multipart object: MD5 of the parts' binary ETags (MD5s on S3, SHA-256s on the embedded store), dash, part count. */
export function multipartEtag(partEtags: readonly string[]): string {
  const hash = createHash('md5');
  for (const etag of partEtags) hash.update(Buffer.from(etag, 'hex'));
  return `${hash.digest('hex')}-${partEtags.length}`;
}

/**
 * Uploads a run to object storage and computes its SHA-256 on the way (one read of the
 * source). Above one part it is a resumable multipart upload: the upload id and every
 * part the store confirms go into the journal; after a crash or a failed attempt the
 * store is asked which parts it holds (ListParts, all pages), a held part is kept when
 * its ETag matches the bytes here, and only the missing parts are sent. Parts go
 * `concurrency` at a time (a granted store asks for their URLs ahead, a batch per grant).
 * The stored object is checked against what was read: a single PutObject by its ETag when
 * that is the SHA-256 or the MD5 of the bytes, otherwise by its size (and its multipart ETag, where the
 * store gives one). Failures are UPLOAD_FAILED
 * (retryable; the multipart upload stays for the next attempt), a missing source
 * INPUT_NOT_FOUND; an abort rejects with the signal's reason.
 */
export async function uploadToStore(store: PartStore, target: UploadTarget, options: UploadOptions = {}): Promise<UploadedObject> {
  const { signal } = options;
  signal?.throwIfAborted();
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let source: PartSource | undefined;
  try {
    source = await openSource(target.source);
    const sha256 = await new RunUpload(store, target, source, options, controller.signal).run();
    return { uri: `s3://${target.bucket}/${target.key}`, size: source.size, sha256 };
  } catch (err) {
    controller.abort(err);
    if (signal?.aborted) throw signal.reason;
    if (err instanceof ArteriaError) throw err;
    const cause = err as NodeJS.ErrnoException;
    throw new ArteriaError('UPLOAD_FAILED', `upload of s3://${target.bucket}/${target.key} failed: ${cause.message ?? String(err)}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await source?.close();
  }
}

/** One attempt at one run's upload. */
class RunUpload {
  readonly #store: PartStore;
  readonly #key: string;
  readonly #source: PartSource;
  readonly #options: UploadOptions;
  readonly #signal: AbortSignal;
  readonly #journal: UploadJournalPort;
  readonly #entryId: string;
  readonly #partSize: number;
  readonly #hash = createHash('sha256');
  #loaded = 0;

  constructor(store: PartStore, target: UploadTarget, source: PartSource, options: UploadOptions, signal: AbortSignal) {
    this.#store = store;
    this.#key = target.key;
    this.#source = source;
    this.#options = options;
    this.#signal = signal;
    this.#journal = options.journal ?? memoryJournal();
    this.#entryId = options.entryId ?? randomUUID();
    this.#partSize = Math.max(options.partSizeBytes ?? MIN_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES);
  }

  /** Returns the SHA-256 (hex) of the source. */
  async run(): Promise<string> {
    const { size } = this.#source;
    if (size <= this.#partSize) return this.#single();
    let record = this.#journal.get(this.#entryId);
    if (record !== undefined && (record.key !== this.#key || record.partSize !== this.#partSize || record.sourceSize !== size)) {
      await this.#store.abortUpload(record.key, record.uploadId, this.#signal);
      this.#journal.forget(this.#entryId);
      record = undefined;
    }
    let held = new Map<number, StoredPart>();
    if (record !== undefined) {
      const listed = await this.#store.listParts(record.key, record.uploadId, this.#signal);
      if (listed === undefined) {
        // The upload is gone: completed just before a crash, or aborted. A complete object of ours needs no byte sent.
        const done = await this.#completedBefore(record);
        if (done !== undefined) return done;
        this.#journal.forget(this.#entryId);
        record = undefined;
      } else {
        held = new Map(listed.map((p) => [p.partNumber, p]));
      }
    }
    const planned: number[] = [];
    for (let part = 1; part <= Math.ceil(size / this.#partSize); part += 1) if (!held.has(part)) planned.push(part);
    if (record === undefined) {
      const uploadId = await this.#store.createUpload(this.#key, this.#signal, planned);
      this.#journal.begin({ entryId: this.#entryId, key: this.#key, uploadId, partSize: this.#partSize, sourceSize: size, createdAt: epochNow() });
      record = { entryId: this.#entryId, key: this.#key, uploadId, partSize: this.#partSize, sourceSize: size, createdAt: epochNow(), parts: new Map() };
    }
    this.#store.planParts?.(this.#key, record.uploadId, planned, this.#signal);
    const etags = await this.#sendParts(record, held);
    const objectEtag = await this.#store.completeUpload(this.#key, record.uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })), this.#signal);
    const sha256 = this.#hash.digest('hex');
    await this.#checkStored(objectEtag, etags);
    return sha256;
  }

  async #single(): Promise<string> {
    const bytes = await this.#source.read(0, this.#source.size);
    const sha256 = this.#hash.update(bytes).digest('hex');
    await this.#take(bytes.length);
    // Once: a PUT whose answer was lost, or a crash before the outbox recorded it, left the object stored already.
    const etag = await putOnce(this.#store, this.#key, bytes, this.#signal);
    // An ETag that is these bytes' SHA-256 (the embedded store) or MD5 (S3) says the store holds exactly them;
    // otherwise (stores with encryption keys) the object is looked at.
    const exact = etag !== undefined && (etag === sha256 || etagIsDigestOf(etag, bytes));
    if (!exact) await this.#checkStored(undefined, []);
    this.#options.onProgress?.({ loadedBytes: bytes.length, totalBytes: bytes.length });
    return sha256;
  }

  /** Reads every part in order (hashing it), keeps those the store holds and sends the rest, `concurrency` at a time. */
  async #sendParts(record: UploadRecord, held: Map<number, StoredPart>): Promise<string[]> {
    const { size } = this.#source;
    const count = Math.ceil(size / this.#partSize);
    const etags: string[] = new Array<string>(count);
    const inFlight = new Set<Promise<void>>();
    let failure: Error | undefined;
    const concurrency = this.#options.concurrency ?? 4;
    // Part buffers are reused once their part is stored: at most concurrency + 1 exist, and
    // a large run does not churn hundreds of part-sized allocations through the collector.
    const free: Buffer[] = [];
    for (let partNumber = 1; partNumber <= count && failure === undefined; partNumber += 1) {
      const offset = (partNumber - 1) * this.#partSize;
      const buffer = this.#source.inMemory ? undefined : (free.pop() ?? Buffer.allocUnsafe(this.#partSize));
      const bytes = await this.#source.read(offset, Math.min(this.#partSize, size - offset), buffer);
      this.#hash.update(bytes);
      const kept = this.#heldEtag(held.get(partNumber), record.parts.get(partNumber), bytes);
      if (kept !== undefined) {
        etags[partNumber - 1] = kept;
        this.#progress(bytes.length, partNumber, true);
        if (buffer !== undefined) free.push(buffer);
        continue;
      }
      await this.#take(bytes.length);
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      if (failure !== undefined) break;
      const number = partNumber;
      const sending = this.#store.uploadPart(this.#key, record.uploadId, number, bytes, this.#signal).then(
        (etag) => {
          this.#journal.confirmPart(this.#entryId, number, bytes.length, etag);
          etags[number - 1] = etag;
          this.#progress(bytes.length, number, false);
          if (buffer !== undefined) free.push(buffer); // the request has ended: nothing else holds its bytes
        },
        (err: unknown) => {
          failure ??= err instanceof Error ? err : new Error(String(err));
        },
      );
      const tracked = sending.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    return etags;
  }

  /**
   * A part the store holds is kept when it is the size read here and its ETag is the
   * MD5 (S3) or the SHA-256 (the embedded store) of these bytes, or the ETag the store gave
   * this gateway for it (stores with encryption keys use neither); otherwise it is sent again.
   */
  #heldEtag(stored: StoredPart | undefined, confirmed: { size: number; etag: string } | undefined, bytes: Buffer): string | undefined {
    if (stored === undefined || stored.size !== bytes.length) return undefined;
    if (confirmed !== undefined && confirmed.etag === stored.etag) return stored.etag;
    return etagIsDigestOf(stored.etag, bytes) ? stored.etag : undefined;
  }

  /** The upload is gone but the object may be there, completed by the previous attempt: verified against the bytes here. */
  async #completedBefore(record: UploadRecord): Promise<string | undefined> {
    const head = await this.#store.head(this.#key, this.#signal);
    if (head === undefined || head.size !== this.#source.size || head.etag === undefined) return undefined;
    const whole = createHash('md5');
    const partMd5s: string[] = [];
    const partSha256s: string[] = [];
    for (let offset = 0; offset < this.#source.size; offset += this.#partSize) {
      const bytes = await this.#source.read(offset, Math.min(this.#partSize, this.#source.size - offset));
      this.#hash.update(bytes);
      whole.update(bytes);
      partMd5s.push(md5(bytes));
      partSha256s.push(sha256Of(bytes));
    }
    const recorded = [...record.parts.entries()].sort(([a], [b]) => a - b).map(([, p]) => p.etag);
    // S3's multipart ETag of parts with MD5 ETags, or the embedded store's of parts with SHA-256 ETags.
    const matches =
      head.etag === whole.digest('hex') || head.etag === multipartEtag(partMd5s) || head.etag === multipartEtag(partSha256s) || (recorded.length === partMd5s.length && head.etag === multipartEtag(recorded));
    if (!matches) return undefined;
    this.#progress(this.#source.size, undefined, true);
    return this.#hash.digest('hex');
  }

  /** The stored object has the size read here, and, when the store gives a multipart ETag, the parts sent. */
  async #checkStored(objectEtag: string | undefined, partEtags: readonly string[]): Promise<void> {
    const head = await this.#store.head(this.#key, this.#signal);
    if (head?.size !== this.#source.size) {
      throw new ArteriaError('UPLOAD_FAILED', `stored object ${this.#key} has ${head?.size ?? 'no'} bytes; ${this.#source.size} were uploaded`);
    }
    const etag = objectEtag ?? head.etag;
    if (partEtags.length > 0 && etag !== undefined && /-\d+$/.test(etag) && partEtags.every((e) => etagDigest(e) !== undefined) && etag !== multipartEtag(partEtags)) {
      throw new ArteriaError('UPLOAD_FAILED', `stored object ${this.#key} has ETag ${etag}; the parts sent make ${multipartEtag(partEtags)}`);
    }
  }

  async #take(bytes: number): Promise<void> {
    await this.#options.limiter?.takeSliced(bytes, this.#signal);
  }

  #progress(bytes: number, part: number | undefined, resumed: boolean): void {
    this.#loaded += bytes;
    this.#options.onProgress?.({ loadedBytes: this.#loaded, totalBytes: this.#source.size, ...(part === undefined ? {} : { part }), ...(resumed ? { resumed } : {}) });
  }
}
