import { randomUUID } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  AlgorithmSpec,
  ArteriaError,
  ConfigV1,
  RequestV1,
  ResultV1,
  decodePayload,
  encodePayload,
  epochNow,
  requestId,
  toArteriaError,
  type Timings,
} from '@arteria/protocol';
import { assertMultiFrameRun, readHeader, readHeaderFromFile, type DicomHeader } from '@arteria/dicom';
import { parseGatewayOptions, type GatewayConfig } from './config.js';
import { DeviceConnection } from './connection.js';
import { TypedEmitter } from './events.js';
import { errorFields, stderrLogger, type GatewayLogger } from './log.js';
import { Outbox, type EntryState, type OutboxEntry } from './outbox.js';
import { createS3Client } from './s3.js';
import { ensureFolder, removeFile, spoolFolder, spoolPath, writeDurably } from './spool.js';
import { runObjectKey, uploadRun, type UploadProgress } from './upload.js';
import { Waiters } from './waiters.js';

export type GatewayState = 'created' | 'starting' | 'running' | 'closing' | 'closed';

/** A result as the device sees it: the platform's ResultV1 plus the moment it arrived. */
export type GatewayResult = ResultV1 & { timings: Timings & { received: number } };

/** A run to send: a file path, or bytes (kept in the outbox's spool folder until answered). */
export type RunSource = string | { bytes: Uint8Array; name: string };

export interface SendOptions {
  /** `name@range`; defaults to the fleet config's first algorithm, else the `algorithm` option. */
  algorithm?: string;
  priority?: 'clinical' | 'bulk';
  /** Epoch ms after which the answer is no longer useful. */
  deadline?: number;
  /** Aborting withdraws the run (unless another caller waits for it) and rejects with the reason. */
  signal?: AbortSignal;
}

export interface GatewayEvents {
  result: { entryId: string; sourcePath: string; result: GatewayResult };
  progress: { entryId: string } & UploadProgress;
  entry: { entryId: string; state: EntryState; requestId?: string };
  error: { entryId?: string; error: ArteriaError };
  connection: { state: 'ready' | 'down' };
  config: { config: ConfigV1 };
}

export interface GatewayStats {
  state: GatewayState;
  connected: boolean;
  /** Runs accepted by send() since start. */
  sent: number;
  /** Requests published (acknowledged by the broker), resends included. */
  published: number;
  /** Results received since start. */
  done: number;
  /** Entries that ended without a result since start (source gone). */
  failed: number;
  /** Outbox entries not yet answered (resumed ones included). */
  pending: number;
}

export interface GatewayDependencies {
  logger?: GatewayLogger;
  /** An S3 client to use instead of one built from the options (the gateway then does not destroy it). */
  s3Client?: S3Client;
}

interface Running {
  outbox: Outbox;
  s3: S3Client;
  connection: DeviceConnection;
  spool: string;
}

/**
 * The edge agent: takes runs, keeps them in a durable outbox, streams them to object
 * storage, publishes a request once the object is complete, resends it until the result
 * arrives, and resumes whatever was in flight after a restart. Runs upload one after
 * another (parts in parallel), so the oldest run gets the whole uplink.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly #logger: GatewayLogger;
  readonly #ownS3: boolean;
  readonly #emitter: TypedEmitter<GatewayEvents>;
  readonly #waiters = new Waiters<GatewayResult>();
  readonly #lifetime = new AbortController();
  readonly #uploads = new Map<string, AbortController>();
  readonly #publishing = new Set<string>();
  readonly #counters = { sent: 0, published: 0, done: 0, failed: 0 };
  #s3Client: S3Client | undefined;
  #state: GatewayState = 'created';
  #running: Running | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #uploadLoop: Promise<void> | undefined;
  #resendTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #fleetAlgorithm: string | undefined;

  constructor(options: unknown, dependencies: GatewayDependencies = {}) {
    this.config = parseGatewayOptions(options);
    this.#logger = dependencies.logger ?? stderrLogger;
    this.#s3Client = dependencies.s3Client;
    this.#ownS3 = dependencies.s3Client === undefined;
    this.#emitter = new TypedEmitter<GatewayEvents>((err, event) =>
      this.#logger.error('gateway event listener threw', { event: String(event), ...errorFields(err) }),
    );
  }

  get state(): GatewayState {
    return this.#state;
  }

  /** Subscribes to gateway events; returns the function that unsubscribes. */
  on<K extends keyof GatewayEvents>(event: K, listener: (payload: GatewayEvents[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  /**
   * Opens the outbox, resumes what it holds and connects. Resolves once the first MQTT
   * connection attempt is ready or has failed: an edge box without network still starts,
   * keeps accepting runs and connects when it can. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      return Promise.reject(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closed; create a new Gateway'));
    }
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = 'starting';
    const { config } = this;
    const outbox = Outbox.open(config.outboxPath, { maxEntries: config.maxOutboxEntries, keepFinishedEntries: config.keepFinishedEntries });
    try {
      const spool = spoolFolder(config.outboxPath);
      await ensureFolder(spool);
      this.#s3Client ??= createS3Client(config.s3);
      const connection = new DeviceConnection(
        {
          tenant: config.tenant,
          device: config.device,
          url: config.mqttUrl,
          token: config.token,
          connectTimeoutMs: config.mqttConnectTimeoutMs,
          reconnectPeriodMs: config.mqttReconnectPeriodMs,
        },
        {
          onResult: (payload) => this.#onResult(payload),
          onConfig: (payload) => this.#onConfig(payload),
          onReady: () => this.#onReady(),
          onDown: () => this.#emitter.emit('connection', { state: 'down' }),
        },
        this.#logger,
      );
      this.#running = { outbox, s3: this.#s3Client, connection, spool };
      const live = outbox.counts();
      if (live.pending + live.uploaded + live.published > 0) {
        this.#logger.info('resuming runs from the outbox', { pending: live.pending, awaitingResult: live.uploaded + live.published });
      }
      this.#uploadLoop = this.#runUploads();
      const tickMs = Math.min(config.resendIntervalMs, 1000);
      this.#resendTimer = setInterval(() => this.#resendDue(), tickMs);
      await connection.updateStatus({ outboxDepth: outbox.liveCount() });
      await connection.start();
      if (this.#state === 'starting') this.#state = 'running';
    } catch (err) {
      if (this.#running === undefined) outbox.close();
      this.#starting = undefined;
      await this.close();
      throw err;
    }
  }

  /**
   * Sends a run and resolves with its result. The DICOM header is checked first: a file
   * that is not a multi-frame DICOM run is refused (INVALID_DICOM, UNSUPPORTED_DICOM)
   * before anything is stored or uploaded. Once accepted, the run survives restarts;
   * RESULT_TIMEOUT only means this caller stopped waiting, not that the run is dropped.
   */
  async send(source: RunSource, options: SendOptions = {}): Promise<GatewayResult> {
    const { signal } = options;
    this.#assertRunning();
    signal?.throwIfAborted();
    const algorithm = options.algorithm ?? this.#fleetAlgorithm ?? this.config.algorithm;
    const spec = AlgorithmSpec.safeParse(algorithm);
    if (!spec.success) throw new ArteriaError('INVALID_REQUEST', `algorithm ${JSON.stringify(algorithm)}: ${spec.error.issues[0]?.message ?? 'invalid'}`);
    const acquiredAt = epochNow();
    const header = await this.#readHeader(source);
    assertMultiFrameRun(header);
    if (!RequestV1.shape.instanceUid.safeParse(header.sopInstanceUid).success) {
      throw new ArteriaError('UNSUPPORTED_DICOM', `SOP Instance UID ${JSON.stringify(header.sopInstanceUid)} is not a valid DICOM UID`);
    }
    signal?.throwIfAborted();
    const { outbox, spool } = this.#assertRunning();

    let entry: OutboxEntry | undefined;
    const entryId = randomUUID();
    const base = {
      id: entryId,
      algorithm,
      instanceUid: header.sopInstanceUid,
      objectKey: runObjectKey({ tenant: this.config.tenant, device: this.config.device, instanceUid: header.sopInstanceUid, entryId }),
      priority: options.priority ?? 'clinical',
      deadline: options.deadline,
      acquiredAt,
    };
    if (typeof source === 'string') {
      const sourcePath = resolvePath(source);
      entry = outbox.findLive(sourcePath, algorithm);
      if (entry === undefined) entry = outbox.add({ ...base, sourcePath, spooled: false }, epochNow());
      else this.#logger.info('run is already in the outbox; waiting for its result', { entryId: entry.id, sourcePath });
    } else {
      const sourcePath = spoolPath(spool, entryId, source.name);
      outbox.assertRoom(); // before writing the bytes: a full outbox must not fill the disk
      await writeDurably(sourcePath, source.bytes, spool);
      try {
        entry = this.#assertRunning().outbox.add({ ...base, sourcePath, spooled: true }, epochNow());
      } catch (err) {
        await removeFile(sourcePath);
        throw err;
      }
    }
    const result = this.#waiters.wait(entry.id, signal, (reason) => this.#cancel(entryId, reason));
    if (entry.id === entryId) {
      this.#counters.sent += 1;
      this.#emitter.emit('entry', { entryId, state: 'pending' });
      this.#wake?.();
    } else if (entry.firstPublishedAt !== undefined) {
      this.#startResultDeadline(entry.id);
    }
    return result;
  }

  /** Tells the platform whether the device is in a procedure (a leading signal for scaling). */
  async setInProcedure(inProcedure: boolean): Promise<void> {
    const { connection, outbox } = this.#assertRunning();
    await connection.updateStatus({ inProcedure, outboxDepth: outbox.liveCount() });
  }

  stats(): GatewayStats {
    return {
      state: this.#state,
      connected: this.#running?.connection.state === 'ready',
      ...this.#counters,
      pending: this.#running && this.#state !== 'closed' ? this.#running.outbox.liveCount() : 0,
    };
  }

  /**
   * Stops uploads, rejects waiting callers with GATEWAY_NOT_RUNNING (their runs stay in
   * the outbox), says goodbye to the broker and closes the outbox. Every step runs even
   * if one fails. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    if (this.#state === 'created') {
      this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    const failures: unknown[] = [];
    const step = async (fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failures.push(err);
      }
    };
    clearInterval(this.#resendTimer);
    this.#lifetime.abort(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closing'));
    this.#wake?.();
    await step(() => this.#uploadLoop);
    this.#waiters.rejectAll(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway closed before the result arrived; the run stays in the outbox and resumes on the next start'));
    const running = this.#running;
    if (running) {
      await step(() => running.connection.close());
      if (this.#ownS3) await step(() => running.s3.destroy());
      await step(() => running.outbox.close());
    }
    this.#emitter.removeAll();
    this.#state = 'closed';
    for (const err of failures) this.#logger.error('gateway close step failed', errorFields(err));
    if (failures.length > 0) throw new AggregateError(failures, 'gateway close did not complete cleanly');
  }

  #assertRunning(): Running {
    if (this.#state !== 'running' || this.#running === undefined) {
      const hint = this.#state === 'created' || this.#state === 'starting' ? '; await start() first' : '';
      throw new ArteriaError('GATEWAY_NOT_RUNNING', `the gateway is ${this.#state}${hint}`);
    }
    return this.#running;
  }

  async #readHeader(source: RunSource): Promise<DicomHeader> {
    try {
      if (typeof source === 'string') return await readHeaderFromFile(source, { maxHeaderBytes: this.config.maxHeaderBytes });
      return readHeader(source.bytes);
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      const name = typeof source === 'string' ? source : source.name;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ArteriaError('INPUT_NOT_FOUND', `run file ${name} does not exist`, { cause: err });
      throw new ArteriaError('INVALID_DICOM', `cannot read the DICOM header of ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  // ---- uploads -------------------------------------------------------------------------

  async #runUploads(): Promise<void> {
    const signal = this.#lifetime.signal;
    while (!signal.aborted && this.#running) {
      const { outbox } = this.#running;
      const entry = outbox.nextPending(epochNow(), new Set(this.#uploads.keys()));
      if (entry === undefined) {
        await this.#sleep(outbox.nextPendingDueAt());
        continue;
      }
      await this.#upload(entry);
    }
  }

  /** Waits until woken, until `dueAt` (epoch ms) or until closing. */
  async #sleep(dueAt: number | undefined): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = dueAt === undefined ? undefined : setTimeout(done, Math.max(0, dueAt - epochNow()));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  async #upload(entry: OutboxEntry): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    const controller = new AbortController();
    const stop = (): void => controller.abort(this.#lifetime.signal.reason);
    this.#lifetime.signal.addEventListener('abort', stop, { once: true });
    this.#uploads.set(entry.id, controller);
    try {
      const object = await uploadRun(
        running.s3,
        { bucket: this.config.s3.bucket, key: entry.objectKey, source: entry.sourcePath },
        {
          signal: controller.signal,
          partSizeBytes: this.config.partSizeBytes,
          concurrency: this.config.uploadConcurrency,
          onProgress: (progress) => this.#emitter.emit('progress', { entryId: entry.id, ...progress }),
        },
      );
      const request: RequestV1 = {
        v: 1,
        id: requestId({ tenant: this.config.tenant, device: this.config.device, instanceUid: entry.instanceUid, sha256: object.sha256, algorithm: entry.algorithm }),
        tenant: this.config.tenant,
        device: this.config.device,
        algorithm: entry.algorithm,
        instanceUid: entry.instanceUid,
        inputs: [{ uri: object.uri, size: object.size, sha256: object.sha256, contentType: 'application/dicom' }],
        priority: entry.priority,
        ...(entry.deadline === undefined ? {} : { deadline: entry.deadline }),
        timings: { acquired: entry.acquiredAt, uploaded: epochNow() },
      };
      running.outbox.markUploaded(entry.id, { ...object, requestId: request.id, requestJson: JSON.stringify(request) }, epochNow());
      this.#emitter.emit('entry', { entryId: entry.id, state: 'uploaded', requestId: request.id });
      const uploaded = running.outbox.get(entry.id);
      if (uploaded?.state === 'uploaded') await this.#publish(uploaded);
    } catch (err) {
      if (controller.signal.aborted) return; // withdrawn or closing: the outbox already says what happens next
      const error = toArteriaError(err, 'UPLOAD_FAILED');
      if (error.code === 'INPUT_NOT_FOUND') {
        this.#fail(entry, error);
        return;
      }
      const attempts = entry.attempts + 1;
      const delayMs = Math.min(this.config.resendIntervalMs * 2 ** (attempts - 1), this.config.maxRetryDelayMs);
      running.outbox.markAttemptFailed(entry.id, `${error.code}: ${error.message}`, epochNow() + delayMs, epochNow());
      this.#logger.warn('upload failed; retrying', { entryId: entry.id, attempts, retryInMs: delayMs, ...errorFields(error) });
      this.#emitter.emit('error', { entryId: entry.id, error });
    } finally {
      this.#lifetime.signal.removeEventListener('abort', stop);
      this.#uploads.delete(entry.id);
    }
  }

  // ---- requests and results ----------------------------------------------------------

  /** Publishes an entry's request (QoS 1) if connected; the resend tick and reconnects retry it. */
  async #publish(entry: OutboxEntry): Promise<void> {
    const running = this.#running;
    if (running === undefined || running.connection.state !== 'ready' || entry.requestJson === undefined) return;
    if (this.#publishing.has(entry.id)) return;
    this.#publishing.add(entry.id);
    try {
      // Every copy carries the first publish time: the platform keeps whichever copy it sees first.
      const published = running.outbox.stampFirstPublish(entry.id, epochNow());
      const request = RequestV1.parse(JSON.parse(entry.requestJson));
      await running.connection.publishRequest(encodePayload({ ...request, timings: { ...request.timings, published } }));
      running.outbox.markPublished(entry.id, epochNow());
      this.#counters.published += 1;
      // The result may already have come (and the entry be done) before the PUBACK.
      if (running.outbox.get(entry.id)?.state === 'published') {
        if (entry.state === 'uploaded') this.#emitter.emit('entry', { entryId: entry.id, state: 'published', requestId: request.id });
        this.#startResultDeadline(entry.id);
      }
    } catch (err) {
      if (this.#lifetime.signal.aborted) return;
      const error = toArteriaError(err, 'INTERNAL');
      this.#logger.warn('publishing a request failed; it is resent', { entryId: entry.id, ...errorFields(error) });
      this.#emitter.emit('error', { entryId: entry.id, error });
    } finally {
      this.#publishing.delete(entry.id);
    }
  }

  #startResultDeadline(entryId: string): void {
    this.#waiters.startDeadline(entryId, this.config.resultTimeoutMs, () => {
      const entry = this.#running?.outbox.get(entryId);
      return new ArteriaError(
        'RESULT_TIMEOUT',
        `no result for request ${entry?.requestId ?? entryId} within ${this.config.resultTimeoutMs} ms of its first publish; it stays in the outbox and is resent`,
      );
    });
  }

  #resendDue(): void {
    const running = this.#running;
    if (running === undefined || running.connection.state !== 'ready' || this.#lifetime.signal.aborted) return;
    const dueBefore = epochNow() - this.config.resendIntervalMs;
    for (const entry of running.outbox.awaitingResult()) {
      if (entry.lastPublishedAt === undefined || entry.lastPublishedAt <= dueBefore) void this.#publish(entry);
    }
  }

  #onReady(): void {
    this.#emitter.emit('connection', { state: 'ready' });
    // After a reconnect, resend everything unanswered now rather than at the next tick.
    for (const entry of this.#running?.outbox.awaitingResult() ?? []) void this.#publish(entry);
  }

  /** Runs synchronously before the PUBACK: the entry is durably done before the platform may forget the result. */
  #onResult(payload: Buffer): void {
    const running = this.#running;
    if (running === undefined || this.#state === 'closed') return;
    let decoded: ResultV1;
    try {
      decoded = decodePayload(ResultV1, payload);
    } catch (err) {
      this.#logger.warn('ignoring a malformed result', errorFields(err));
      return;
    }
    if (decoded.tenant !== this.config.tenant || decoded.device !== this.config.device) {
      this.#logger.warn('ignoring a result addressed to another device', { tenant: decoded.tenant, device: decoded.device, requestId: decoded.requestId });
      return;
    }
    const result: GatewayResult = { ...decoded, timings: { ...decoded.timings, received: epochNow() } };
    const completed = running.outbox.complete(result.requestId, JSON.stringify(result), result.timings.received);
    if (completed.length === 0) {
      const known = running.outbox.findByRequestId(result.requestId);
      this.#logger.info('ignoring a result the outbox is not waiting for', { requestId: result.requestId, entryState: known?.state ?? 'unknown' });
      return;
    }
    for (const entry of completed) {
      this.#counters.done += 1;
      if (entry.spooled) this.#removeSpooled(entry);
      this.#emitter.emit('entry', { entryId: entry.id, state: 'done', requestId: result.requestId });
      this.#emitter.emit('result', { entryId: entry.id, sourcePath: entry.sourcePath, result });
      this.#waiters.resolve(entry.id, result);
    }
  }

  #onConfig(payload: Buffer): void {
    if (payload.length === 0) return; // the retained config was cleared
    const connection = this.#running?.connection;
    let config: ConfigV1;
    try {
      config = decodePayload(ConfigV1, payload);
    } catch (err) {
      this.#logger.warn('ignoring an invalid fleet config', errorFields(err));
      const version = (() => {
        try {
          const raw: unknown = JSON.parse(payload.toString('utf8'));
          const v = (raw as { version?: unknown } | null)?.version;
          return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
        } catch {
          return undefined;
        }
      })();
      if (version !== undefined) {
        connection?.publishReported({ v: 1, version, applied: false, error: (err as Error).message.slice(0, 2000) }).catch((e: unknown) =>
          this.#logger.warn('could not report the fleet config', errorFields(e)),
        );
      }
      return;
    }
    this.#fleetAlgorithm = config.algorithms[0];
    this.#logger.info('applied fleet config', { version: config.version, algorithm: this.#fleetAlgorithm ?? this.config.algorithm });
    this.#emitter.emit('config', { config });
    connection?.publishReported({ v: 1, version: config.version, applied: true }).catch((e: unknown) =>
      this.#logger.warn('could not report the fleet config', errorFields(e)),
    );
  }

  // ---- ending entries -------------------------------------------------------------------

  #fail(entry: OutboxEntry, error: ArteriaError): void {
    const running = this.#running;
    if (running === undefined || !running.outbox.finish(entry.id, 'failed', `${error.code}: ${error.message}`, epochNow())) return;
    this.#counters.failed += 1;
    this.#logger.error('run cannot be sent; removed from the outbox', { entryId: entry.id, ...errorFields(error) });
    if (entry.spooled) this.#removeSpooled(entry);
    this.#emitter.emit('entry', { entryId: entry.id, state: 'failed' });
    this.#emitter.emit('error', { entryId: entry.id, error });
    this.#waiters.reject(entry.id, error);
  }

  /** The only caller waiting for the entry gave up: withdraw it. */
  #cancel(entryId: string, reason: unknown): void {
    const running = this.#running;
    if (running === undefined || this.#state !== 'running') return;
    const message = reason instanceof Error ? reason.message : String(reason);
    if (!running.outbox.finish(entryId, 'cancelled', `cancelled by the sender: ${message}`, epochNow())) return;
    this.#uploads.get(entryId)?.abort(reason);
    const entry = running.outbox.get(entryId);
    if (entry?.spooled) this.#removeSpooled(entry);
    this.#emitter.emit('entry', { entryId, state: 'cancelled' });
  }

  #removeSpooled(entry: OutboxEntry): void {
    removeFile(entry.sourcePath).catch((err: unknown) =>
      this.#logger.warn('could not remove a spooled run', { entryId: entry.id, path: entry.sourcePath, ...errorFields(err) }),
    );
  }
}
