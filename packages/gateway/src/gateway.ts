import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { AlgorithmSpec, ArteriaError, RequestV1, ResultV1, decodePayload, epochNow } from '@arteria/protocol';
import { assertMultiFrameRun, readHeader, readHeaderFromFile, type DicomHeader } from '@arteria/dicom';
import { parseGatewayOptions, type GatewayConfig } from './config.js';
import { DeviceConnection } from './connection.js';
import { deidentify, type DeidentifiedRun } from './deid/deidentify.js';
import { deidentifyFile } from './deid/deidentify-file.js';
import { DeidentificationKey } from './deid/key.js';
import type { DeidentificationProfile } from './deid/profile.js';
import { ReidentificationStore } from './deid/reid-store.js';
import { TypedEmitter } from './events.js';
import { BandwidthLimiter } from './bandwidth.js';
import { AdmissionProbes } from './admission-probe.js';
import { FleetConfigManager, type ActiveConfig } from './config-manager.js';
import { errorFields, stderrLogger, type GatewayLogger } from './log.js';
import { Outbox, type OutboxEntry } from './outbox.js';
import { Publisher } from './publisher.js';
import { RunTraces } from './run-traces.js';
import { noTracing, openTracing } from '@arteria/telemetry';
import { createS3Client } from './s3.js';
import { describeProxy, proxyAgentFor, proxyUrlFor } from './proxy.js';
import { s3PartStore } from './part-store.js';
import { UploadSweeper } from './upload-sweeper.js';
import { GrantedUrls } from './granted-urls.js';
import { UploadGrants } from './upload-grants.js';
import { ensureFolder, removeFile, spoolFolder, spoolPath, syncFolder, writeDurably } from './spool.js';
import type { GatewayDependencies, GatewayEvents, GatewayResult, GatewayState, GatewayStats, RunSource, SendOptions } from './types.js';
import type { RunAttributes } from './routing.js';
import { runObjectKey } from './upload.js';
import { Uploader } from './uploader.js';
import { Waiters } from './waiters.js';
import { loadMqttTls } from './tls.js';

interface Running {
  outbox: Outbox;
  s3: S3Client;
  connection: DeviceConnection;
  uploader: Uploader;
  sweeper: UploadSweeper;
  publisher: Publisher;
  spool: string;
  /** Present unless de-identification is off. */
  deid: { key: DeidentificationKey; store: ReidentificationStore } | undefined;
}

/**
 * The edge agent: takes runs, keeps them in a durable outbox, streams them to object
 * storage, publishes a request once the object is complete, resends it until the result
 * arrives, and resumes whatever was in flight after a restart.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly #logger: GatewayLogger;
  readonly #givenS3: S3Client | undefined;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #emitter: TypedEmitter<GatewayEvents>;
  readonly #waiters = new Waiters<GatewayResult>();
  readonly #lifetime = new AbortController();
  readonly #counters = { sent: 0, published: 0, done: 0, failed: 0 };
  #state: GatewayState = 'created';
  #running: Running | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #fleetAlgorithm: string | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #deidProfile: DeidentificationProfile;
  readonly #limiter: BandwidthLimiter;
  readonly #fleet: FleetConfigManager;
  readonly #probes = new AdmissionProbes();
  /** Replaced at start when an OTLP endpoint is configured. */
  #traces: RunTraces;
  /** Upload grants come over the device's own MQTT topics: requests out, answers among the results. */
  readonly #grants: UploadGrants;

  constructor(options: unknown, dependencies: GatewayDependencies = {}) {
    this.config = parseGatewayOptions(options);
    this.#logger = dependencies.logger ?? stderrLogger;
    this.#givenS3 = dependencies.s3Client;
    this.#env = dependencies.env ?? process.env;
    this.#deidProfile = this.config.deidentification.profile;
    this.#limiter = new BandwidthLimiter(this.config.uploadBandwidthBytesPerSecond);
    this.#traces = new RunTraces(noTracing(), this.#logger);
    this.#grants = new UploadGrants((payload) => {
      const connection = this.#running?.connection;
      if (connection?.state !== 'ready') return Promise.reject(new ArteriaError('GRANT_UNAVAILABLE', 'not connected to the broker; upload grants come over MQTT'));
      return connection.publishRequest(payload);
    }, this.config.s3.grantTimeoutMs);
    this.#fleet = new FleetConfigManager(`${this.config.outboxPath}.config.json`, { apply: (next) => this.#applyFleetConfig(next), confirm: (next) => this.#confirmConfig(next) }, this.#logger, {
      acceptDeidentification: this.config.deidentification.remoteProfile === 'accept',
    });
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
    const lifetime = this.#lifetime.signal;
    const otlpEndpoint = config.tracing?.otlpEndpoint ?? this.#env.OTEL_EXPORTER_OTLP_ENDPOINT;
    if (otlpEndpoint !== undefined && otlpEndpoint.trim() !== '') {
      this.#traces = new RunTraces(await openTracing({ otlpEndpoint, serviceName: 'arteria-gateway', serviceInstanceId: `${config.tenant}/${config.device}`, onError: (err) => this.#logger.warn('tracing: spans lost', errorFields(err)) }), this.#logger);
      this.#logger.info('exporting traces over OTLP/HTTP', { endpoint: otlpEndpoint });
    }
    const outbox = Outbox.open(config.outboxPath, { maxEntries: config.maxOutboxEntries, keepFinishedEntries: config.keepFinishedEntries });
    let reid: ReidentificationStore | undefined;
    try {
      const deidOptions = config.deidentification;
      let deid: Running['deid'];
      if (deidOptions.enabled) {
        const key = await DeidentificationKey.loadOrCreate(deidOptions.keyPath ?? `${config.outboxPath}.deid-key`);
        reid = ReidentificationStore.open(deidOptions.reidPath ?? `${config.outboxPath}.reid`, key.storeKey());
        deid = { key, store: reid };
      }
      const spool = spoolFolder(config.outboxPath);
      await ensureFolder(spool);
      const env = this.#env;
      const s3Proxy = proxyAgentFor(config.s3.endpoint, config.proxy, env);
      const mqttProxy = proxyAgentFor(config.mqttUrl, config.proxy, env);
      for (const [what, target] of [['object store', config.s3.endpoint], ['broker', config.mqttUrl]] as const) {
        const proxy = proxyUrlFor(target, config.proxy, env);
        if (proxy !== undefined) this.#logger.info(`${what} through proxy ${describeProxy(proxy)}`, { target });
      }
      const s3 = this.#givenS3 ?? createS3Client(config.s3, s3Proxy);
      const connection = new DeviceConnection(
        {
          ...config,
          url: config.mqttUrl,
          connectTimeoutMs: config.mqttConnectTimeoutMs,
          reconnect: { initialMs: config.mqttReconnectPeriodMs, maxMs: config.mqttReconnectMaxMs },
          ...(mqttProxy ? { proxyAgent: mqttProxy } : {}),
          tls: await loadMqttTls(config.tls),
        },
        {
          onResult: (payload) => this.#onResult(payload),
          onConfig: (payload) => this.#onConfig(payload),
          onReady: () => {
            this.#emitter.emit('connection', { state: 'ready' });
            this.#running?.publisher.publishAll(); // after a reconnect, at once rather than at the next tick
          },
          onDown: () => this.#emitter.emit('connection', { state: 'down' }),
        },
        this.#logger,
      );
      const publisher = new Publisher({
        outbox,
        connection,
        logger: this.#logger,
        resendIntervalMs: config.resendIntervalMs,
        lifetime,
        onPublished: () => (this.#counters.published += 1),
        onFirstAcknowledged: (entry, request, acknowledgedAt) => this.#traces.published(entry, request, acknowledgedAt),
        onFirstPublished: (entry, requestId) => {
          this.#emitter.emit('entry', { entryId: entry.id, state: 'published', requestId });
          this.#startResultDeadline(entry.id);
        },
        onError: (entry, error) => this.#emitter.emit('error', { entryId: entry.id, error }),
      });
      // Default: no store credentials here; each object is written with the platform's upload grants.
      const store = config.s3.accessKeyId === undefined ? s3PartStore(s3, config.s3.bucket, { urls: new GrantedUrls((question, signal) => this.#grants.ask(question, signal)) }) : s3PartStore(s3, config.s3.bucket);
      if (config.s3.accessKeyId !== undefined) this.#logger.warn('the gateway holds bucket-wide object-store keys (development mode); without s3.accessKeyId it uses upload grants', { endpoint: config.s3.endpoint });
      const uploader = new Uploader({
        config,
        outbox,
        store,
        logger: this.#logger,
        lifetime,
        limiter: this.#limiter,
        onProgress: (entryId, progress) => this.#emitter.emit('progress', { entryId, ...progress }),
        onUploaded: (entry) => {
          this.#emitter.emit('entry', { entryId: entry.id, state: 'uploaded', requestId: entry.requestId });
          void publisher.publish(entry);
        },
        onRetry: (entry, error) => this.#emitter.emit('error', { entryId: entry.id, error }),
        onUnsendable: (entry, error) => this.#fail(entry, error),
      });
      const sweeper = new UploadSweeper({
        store,
        journal: outbox.uploads,
        prefix: `${config.tenant}/${config.device}/`,
        abandonedAfterMs: config.abandonedUploadAfterMs,
        logger: this.#logger,
        lifetime,
      });
      this.#running = { outbox, s3, connection, uploader, sweeper, publisher, spool, deid };
      outbox.resetBackoff(epochNow());
      const live = outbox.counts();
      if (live.pending + live.uploaded + live.published > 0) {
        this.#logger.info('resuming runs from the outbox', { pending: live.pending, awaitingResult: live.uploaded + live.published });
      }
      await this.#fleet.restore();
      uploader.start();
      publisher.start();
      void sweeper.sweep();
      this.#sweepTimer = setInterval(() => void sweeper.sweep(), Math.min(Math.max(config.abandonedUploadAfterMs, 1000), 60 * 60 * 1000));
      this.#heartbeat = setInterval(() => {
        if (connection.state !== 'ready') return;
        connection.updateStatus({ outboxDepth: outbox.liveCount() }).catch((err: unknown) => this.#logger.warn('heartbeat failed', errorFields(err)));
      }, config.heartbeatIntervalMs);
      await connection.updateStatus({ outboxDepth: outbox.liveCount() });
      await connection.start();
      if (this.#state === 'starting') this.#state = 'running';
    } catch (err) {
      if (this.#running === undefined) {
        outbox.close();
        reid?.close();
      }
      await this.close();
      throw err;
    }
  }

  /**
   * Sends a run and resolves with its result. The DICOM header is checked first: a file
   * that is not a multi-frame DICOM run is refused (INVALID_DICOM, UNSUPPORTED_DICOM)
   * before anything is stored or uploaded. Once accepted, the run survives restarts;
   * RESULT_TIMEOUT only means this caller stopped waiting, not that the run is dropped.
   * Sending a file that is already on its way joins that run.
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
    const { uploader, deid } = this.#assertRunning();
    const entryId = randomUUID();
    const { tenant, device } = this.config;
    // De-identified UIDs are keyed hashes of the originals: known before any byte is rewritten.
    const instanceUid = deid === undefined ? header.sopInstanceUid : deid.key.uid(header.sopInstanceUid);
    const trace = this.#traces.begin(entryId, options.trace, { tenant, device, algorithm, acquiredAt });
    const base = {
      id: entryId,
      algorithm,
      instanceUid,
      objectKey: runObjectKey({ tenant, device, instanceUid, entryId }),
      priority: options.priority ?? 'clinical',
      deadline: options.deadline,
      acquiredAt,
      trace,
    };
    const entry = await this.#store(source, base, signal).catch((err: unknown) => {
      const error = asDiskFull(err) ?? err;
      this.#traces.finished(entryId, { error: { code: error instanceof ArteriaError ? error.code : 'INTERNAL', message: String(error) } });
      throw error;
    });
    // Joined a run already on its way: that run's trace goes on; this span ends unused.
    if (entry.id !== entryId) this.#traces.discard(entryId);
    const result = this.#waiters.wait(entry.id, signal, (reason) => this.#cancel(entry.id, reason));
    if (entry.id === entryId) {
      this.#counters.sent += 1;
      this.#emitter.emit('entry', { entryId, state: 'pending' });
      uploader.wake();
    } else if (entry.firstPublishedAt !== undefined) {
      this.#startResultDeadline(entry.id);
    }
    return result;
  }

  /** Takes the run into the outbox (or joins the entry already there); nothing is kept when it fails. */
  async #store(source: RunSource, base: Omit<Parameters<Outbox['add']>[0], 'sourcePath' | 'spooled'>, signal: AbortSignal | undefined): Promise<OutboxEntry> {
    const { outbox, spool, deid } = this.#assertRunning();
    const { instanceUid, algorithm, id: entryId } = base;
    let entry: OutboxEntry;
    const joined = deid === undefined ? undefined : outbox.findLiveByInstance(instanceUid, algorithm);
    if (joined !== undefined) {
      this.#logger.info('run is already in the outbox; waiting for its result', { entryId: joined.id, instanceUid });
      entry = joined;
    } else if (deid !== undefined) {
      // Only the de-identified copy is kept for upload: the original never enters the outbox.
      const { run, sourcePath } = await this.#deidentify(source, entryId, deid);
      try {
        signal?.throwIfAborted();
        const running = this.#assertRunning();
        deid.store.put(run.deidentified, run.original, epochNow());
        entry = running.outbox.add({ ...base, instanceUid: run.deidentified.sopInstanceUid, sourcePath, spooled: true }, epochNow());
      } catch (err) {
        await removeFile(sourcePath);
        throw err;
      }
    } else if (typeof source === 'string') {
      const sourcePath = resolvePath(source);
      const existing = outbox.findLive(sourcePath, algorithm);
      if (existing !== undefined) this.#logger.info('run is already in the outbox; waiting for its result', { entryId: existing.id, sourcePath });
      entry = existing ?? outbox.add({ ...base, sourcePath, spooled: false }, epochNow());
    } else {
      const sourcePath = spoolPath(spool, entryId, source.name);
      outbox.assertRoom(); // before writing the bytes: a full outbox must not fill the disk too
      try {
        await writeDurably(sourcePath, source.bytes, spool);
        entry = this.#assertRunning().outbox.add({ ...base, sourcePath, spooled: true }, epochNow());
      } catch (err) {
        await removeFile(sourcePath);
        throw err;
      }
    }
    return entry;
  }

  /**
   * The algorithms a run goes to under the fleet config in effect: the first matching
   * route, else the default algorithm (fleet config's first, else the `algorithm` option).
   */
  route(run: RunAttributes): string[] {
    return this.#fleet.active?.route(run) ?? [this.#fleetAlgorithm ?? this.config.algorithm];
  }

  /** Throws OUTBOX_FULL when the outbox cannot take another run (GATEWAY_NOT_RUNNING when not running). */
  assertRoom(): void {
    this.#assertRunning().outbox.assertRoom();
  }

  /** The fleet config in effect (undefined: local options only). */
  get activeConfig(): ActiveConfig['config'] | undefined {
    return this.#fleet.active?.config;
  }

  /** Tells the platform whether the device is in a procedure (a leading signal for scaling). */
  async setInProcedure(inProcedure: boolean): Promise<void> {
    const { connection, outbox } = this.#assertRunning();
    await connection.updateStatus({ inProcedure, outboxDepth: outbox.liveCount() });
  }

  stats(): GatewayStats {
    const open = this.#running !== undefined && this.#state !== 'closed';
    return {
      state: this.#state,
      connected: this.#running?.connection.state === 'ready',
      ...this.#counters,
      pending: open ? (this.#running?.outbox.liveCount() ?? 0) : 0,
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
    this.#lifetime.abort(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closing'));
    clearInterval(this.#heartbeat);
    clearInterval(this.#sweepTimer);
    const running = this.#running;
    if (running) {
      running.publisher.stop();
      await step(() => running.uploader.stopped());
      await step(() => running.sweeper.sweep());
    }
    this.#waiters.rejectAll(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway closed before the result arrived; the run stays in the outbox and resumes on the next start'));
    await step(() => this.#traces.close());
    if (running) {
      await step(() => running.connection.close());
      if (this.#givenS3 === undefined) await step(() => running.s3.destroy());
      await step(() => running.outbox.close());
      if (running.deid) await step(() => running.deid?.store.close());
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

  /**
   * De-identifies the run under the current profile into the spool folder (a file is
   * streamed: its pixels are never held in memory).
   */
  async #deidentify(source: RunSource, entryId: string, deid: NonNullable<Running['deid']>): Promise<{ run: Omit<DeidentifiedRun, 'bytes'>; sourcePath: string }> {
    const { outbox, spool } = this.#assertRunning();
    outbox.assertRoom(); // before writing: a full outbox must not fill the disk too
    // Named by the entry id alone: a modality's file name may carry the patient's name or UIDs.
    const sourcePath = spoolPath(spool, entryId, '');
    if (typeof source === 'string') {
      const run = await deidentifyFile(source, sourcePath, this.#deidProfile, deid.key, this.config.maxHeaderBytes);
      await syncFolder(spool);
      return { run, sourcePath };
    }
    const { bytes, ...run } = deidentify(source.bytes, this.#deidProfile, deid.key);
    await writeDurably(sourcePath, bytes, spool);
    return { run, sourcePath };
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

  /** Runs synchronously before the PUBACK: the entry is durably done before the platform may forget the result. */
  #onResult(payload: Buffer): void {
    const running = this.#running;
    if (running === undefined || this.#state === 'closed') return;
    if (this.#probes.take(payload)) return;
    if (this.#grants.take(payload)) return;
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
    if (decoded.status === 'rejected' && decoded.error?.code === 'RATE_LIMITED') {
      // Backpressure, not an answer: the request stays in the outbox and its next resend asks again.
      this.#logger.warn('the platform asked this device to slow down; the request stays in the outbox and is resent', { requestId: decoded.requestId, reason: decoded.error.message });
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
      this.#traces.finished(entry.id, { result, receivedAt: result.timings.received });
      this.#emitter.emit('entry', { entryId: entry.id, state: 'done', requestId: result.requestId });
      const original = running.deid?.store.get(entry.instanceUid)?.original;
      this.#emitter.emit('result', { entryId: entry.id, sourcePath: entry.sourcePath, result, ...(original && { original }) });
      this.#waiters.resolve(entry.id, result);
    }
  }

  #onConfig(payload: Buffer): void {
    this.#fleet
      .offer(payload)
      .then(async (report) => {
        if (report === undefined) return;
        const active = this.#fleet.active;
        if (report.applied && active !== undefined) this.#emitter.emit('config', { config: active.config });
        await this.#running?.connection.publishReported(report);
      })
      .catch((err: unknown) => this.#logger.warn('could not report the fleet config', errorFields(err)));
  }

  /** Puts a fleet config into effect (undefined: the local options). Synchronous: nothing half-applied. */
  #applyFleetConfig(next: ActiveConfig | undefined): void {
    this.#limiter.setRate(next?.config.uploadBandwidthBytesPerSecond ?? this.config.uploadBandwidthBytesPerSecond);
    this.#fleetAlgorithm = next?.config.algorithms[0];
    this.#deidProfile = next?.deidentification ?? this.config.deidentification.profile;
  }

  /**
   * Proves a config just applied works before it is kept: connected to the broker, the
   * platform would admit runs sent to each of its algorithms for this device (a dry-run
   * probe, nothing queued), and still connected after the answer.
   */
  async #confirmConfig(next: ActiveConfig | undefined): Promise<void> {
    const connection = await this.#confirmConnected();
    const algorithms = next?.config.algorithms ?? [];
    if (algorithms.length === 0) return;
    const versions = await this.#probes.check(algorithms, (payload) => connection.publishRequest(payload), this.config.configConfirmTimeoutMs);
    await this.#confirmConnected();
    this.#logger.info('the platform admits every algorithm of the new config', { version: next?.config.version, versions: Object.fromEntries(versions) });
  }

  /** Resolves with the connection once the gateway is connected to its broker; rejects after configConfirmTimeoutMs. */
  async #confirmConnected(): Promise<Running['connection']> {
    const deadline = performance.now() + this.config.configConfirmTimeoutMs;
    for (;;) {
      const connection = this.#running?.connection;
      if (connection?.state === 'ready') return connection;
      if (performance.now() >= deadline || this.#state === 'closing' || this.#state === 'closed') {
        throw new ArteriaError('CONFIG_UNCONFIRMED', `not connected to the broker within ${this.config.configConfirmTimeoutMs} ms of applying the config`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  #fail(entry: OutboxEntry, error: ArteriaError): void {
    const running = this.#running;
    if (running === undefined || !running.outbox.finish(entry.id, 'failed', `${error.code}: ${error.message}`, epochNow())) return;
    this.#counters.failed += 1;
    this.#traces.finished(entry.id, { error });
    this.#logger.error('run cannot be sent; removed from the outbox', { entryId: entry.id, ...RunTraces.traceId(entry), ...errorFields(error) });
    if (entry.spooled) this.#removeSpooled(entry);
    void running.sweeper.sweep(); // its multipart upload, if any
    this.#emitter.emit('entry', { entryId: entry.id, state: 'failed' });
    this.#emitter.emit('error', { entryId: entry.id, error });
    this.#waiters.reject(entry.id, error);
  }

  /** The only caller waiting for the entry gave up: withdraw it. */
  #cancel(entryId: string, reason: unknown): void {
    const running = this.#running;
    if (running === undefined || this.#state !== 'running') return;
    const message = reason instanceof Error ? reason.message : String(reason);
    if (!running.outbox.finish(entryId, 'cancelled', `withdrawn by the sender: ${message}`, epochNow())) return;
    running.uploader.abort(entryId, reason);
    void running.sweeper.sweep(); // its multipart upload, if any
    const entry = running.outbox.get(entryId);
    if (entry?.spooled) this.#removeSpooled(entry);
    this.#traces.finished(entryId, { error: { code: 'CANCELLED', message } });
    this.#emitter.emit('entry', { entryId, state: 'cancelled' });
  }

  /** Synchronous (one unlink) so that the copy is gone before the result is announced. */
  #removeSpooled(entry: OutboxEntry): void {
    try {
      rmSync(entry.sourcePath, { force: true });
    } catch (err) {
      this.#logger.warn('could not remove a spooled run', { entryId: entry.id, path: entry.sourcePath, ...errorFields(err) });
    }
  }
}

/** A write refused for want of space (spool file or outbox database): the run was not taken. */
function asDiskFull(err: unknown): ArteriaError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT' && code !== 'SQLITE_FULL') return undefined;
  return new ArteriaError('GATEWAY_DISK_FULL', `the outbox's disk is full (${String(code)}): the run was not taken; nothing already accepted is affected`, { cause: err });
}
