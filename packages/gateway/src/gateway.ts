import type { S3Client } from '@aws-sdk/client-s3';
import { ArteriaError, epochNow } from '@arteria/protocol';
import { noTracing, openTracing } from '@arteria/telemetry';
import { Lifecycle } from '@arteria/ports';
import { burnedInRefusal, type BurnedInFacts } from '@arteria/deid';
import { BandwidthLimiter } from './upload/bandwidth.js';
import { parseGatewayOptions, type GatewayConfig } from './config/config.js';
import type { ActiveConfig } from './config/config-manager.js';
import { TypedEmitter } from './events.js';
import { openParts, type GatewayParts } from './gateway-parts.js';
import { OutboxLock } from './outbox/outbox-lock.js';
import { errorFields, stderrLogger, type GatewayLogger } from './log.js';
import type { RunAttributes } from './config/routing.js';
import { DEFAULT_FRAME_SYNC_MS, FrameSource, settleSpool } from './segmented/frame-source.js';
import { RunTraces } from './runs/run-traces.js';
import { requestedAlgorithm } from './runs/run-intake.js';
import type { GatewayDependencies, GatewayEvents, GatewayResult, GatewayState, GatewayStats, RunSource, SendOptions, StreamOptions } from './types.js';

/**
 * The edge agent: takes runs, keeps them in a durable outbox, streams them to object
 * storage, publishes a request once the object is complete, resends it until the result
 * arrives, and resumes whatever was in flight after a restart.
 *
 * The outbox is the source of every run's state changes (pending → uploaded → published
 * → done); the uploader, publisher, result waiters and announcer each follow the
 * transitions they own (gateway-parts.ts). The Gateway composes them and owns the lifecycle.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly #logger: GatewayLogger;
  readonly #givenS3: S3Client | undefined;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #emitter: TypedEmitter<GatewayEvents>;
  readonly #lifetime = new AbortController();
  readonly #limiter: BandwidthLimiter;
  readonly #life = new Lifecycle('gateway');
  #parts: GatewayParts | undefined;
  #starting: Promise<void> | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  /** Replaced at start when an OTLP endpoint is configured. */
  #traces: RunTraces;

  constructor(options: unknown, dependencies: GatewayDependencies = {}) {
    this.config = parseGatewayOptions(options);
    this.#logger = dependencies.logger ?? stderrLogger;
    this.#givenS3 = dependencies.s3Client;
    this.#env = dependencies.env ?? process.env;
    this.#limiter = new BandwidthLimiter(this.config.uploadBandwidthBytesPerSecond);
    this.#traces = new RunTraces(noTracing(), this.#logger);
    this.#emitter = new TypedEmitter<GatewayEvents>((err, event) =>
      this.#logger.error('gateway event listener threw', { event: String(event), ...errorFields(err) }),
    );
  }

  get state(): GatewayState {
    return this.#life.state;
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
    if (this.#life.state === 'closing' || this.#life.state === 'closed') {
      return Promise.reject(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closed; create a new Gateway'));
    }
    this.#starting ??= this.#life.start(() => this.#start());
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { config } = this;
    const otlpEndpoint = config.tracing?.otlpEndpoint ?? this.#env.OTEL_EXPORTER_OTLP_ENDPOINT;
    if (otlpEndpoint !== undefined && otlpEndpoint.trim() !== '') {
      this.#traces = new RunTraces(await openTracing({ otlpEndpoint, serviceName: 'arteria-gateway', serviceInstanceId: `${config.tenant}/${config.device}`, onError: (err) => this.#logger.warn('tracing: spans lost', errorFields(err)) }), this.#logger);
      this.#logger.info('exporting traces over OTLP/HTTP', { endpoint: otlpEndpoint });
    }
    this.#life.defer('tracing', () => this.#traces.close());
    // Before anything of the outbox is read; let go of after its last close step (close runs the steps last-first).
    const lock = await OutboxLock.acquire(config.outboxPath);
    this.#life.defer('outbox lock', () => lock.release());
    const parts = await openParts({ config, logger: this.#logger, env: this.#env, givenS3: this.#givenS3, events: this.#emitter, traces: this.#traces, limiter: this.#limiter, lifetime: this.#lifetime.signal });
    this.#parts = parts;
    this.#deferCloseSteps(parts);
    const { outbox, connection, uploader, publisher, sweeper, status } = parts;
    // Whatever the outbox holds resumes from the state it last committed.
    outbox.resetBackoff(epochNow());
    const live = outbox.counts();
    if (live.pending + live.uploaded + live.published > 0) {
      this.#logger.info('resuming runs from the outbox', { pending: live.pending, awaitingResult: live.uploaded + live.published });
    }
    await parts.fleet.restore();
    uploader.start();
    publisher.start();
    parts.abandoner.start();
    parts.streamer.start();
    parts.wholeFiles.start();
    void sweeper.sweep();
    this.#timers.push(
      setInterval(() => void sweeper.sweep(), Math.min(Math.max(config.abandonedUploadAfterMs, 1000), 60 * 60 * 1000)),
      setInterval(() => {
        if (connection.state !== 'ready') return;
        connection.updateStatus({ outboxDepth: outbox.liveCount() }).catch((err: unknown) => this.#logger.warn('heartbeat failed', errorFields(err)));
      }, config.heartbeatIntervalMs),
    );
    await connection.updateStatus({ outboxDepth: outbox.liveCount() });
    status.start();
    await connection.start();
  }

  /**
   * Sends a run and resolves with its result. The DICOM header is checked first: a file
   * that is not a multi-frame DICOM run is refused (INVALID_DICOM, UNSUPPORTED_DICOM)
   * before anything is stored or uploaded. Once accepted, the run survives restarts;
   * RESULT_TIMEOUT only means this caller stopped waiting, not that the run is dropped.
   * Sending a file that is already on its way joins that run. A complete file larger than
   * `segmentWholeFilesOverBytes` goes up in segments when it can (whole-file-runs.ts).
   */
  async send(source: RunSource, options: SendOptions = {}): Promise<GatewayResult> {
    const { intake, wholeFiles, waiters } = this.#assertRunning();
    options.signal?.throwIfAborted();
    // Sent again right after its answer came (a restart's re-send): that answer, not a second run.
    const sentAt = epochNow();
    const answered = await intake.answered(source, options);
    if ('result' in answered) return answered.result;
    // A large complete file goes in segments, so the platform computes while it uploads; anything else goes whole (its header read once).
    const entry = (await wholeFiles.accept(source, options)) ?? (await intake.accept(source, options, sentAt, answered.header));
    return waiters.wait(entry, options.signal);
  }

  /**
   * Sends a run while it is still being written to `path` (a Part 10 multi-frame file with
   * native pixels): waits for its header, then uploads and announces frame-aligned segments
   * as frames arrive; the run is complete when its Pixel Data length is reached (or, with
   * `endWhenStable`, when the file stopped growing for `stableAfterMs`). Resolves with the
   * final result; partial results go to `onPartial` and the `partial` event. Refusals are
   * typed: UNSUPPORTED_DICOM (not a multi-frame run), UNSUPPORTED_TRANSFER_SYNTAX
   * (compressed), INVALID_DICOM, RUN_INCOMPLETE (the file stopped growing short of its
   * length); and the platform's refusals of the run in segments, NOT_INCREMENTAL,
   * INVALID_REQUEST (a platform that predates segmented runs), TOO_MANY_OPEN_RUNS, which are
   * not a result: send the file whole once it is complete. Once accepted the run survives
   * restarts like any other: a restarted gateway goes on following the file from the next segment.
   */
  async sendFollow(path: string, options: StreamOptions = {}): Promise<GatewayResult> {
    const { segmentedIntake, waiters, wholeFiles, fleet } = this.#assertRunning();
    options.signal?.throwIfAborted();
    // The platform refused this algorithm's runs in segments lately: not even the header goes up.
    if (wholeFiles.sendsWhole(requestedAlgorithm(options.algorithm, fleet))) throw new ArteriaError('NOT_INCREMENTAL', 'the platform refused runs of this algorithm in segments lately; send the file whole');
    const { entry } = await segmentedIntake.accept({ path }, options);
    options.onAccepted?.({ entryId: entry.id, sourcePath: entry.sourcePath });
    return this.#waitWithPartials(entry.id, waiters.wait(entry, options.signal), options);
  }

  /**
   * Opens a run that a device hands over frame by frame while it acquires it. `header`: the
   * run's Part 10 bytes up to (at least) the value of Pixel Data (native, multi-frame). The
   * returned FrameSource takes whole frames (`push`), then `end()`; its `result` is the final
   * result. Opening the same header again while the run is on its way (after a restart)
   * joins it: `framesAccepted` says where to go on.
   */
  async openFrameSource(header: Uint8Array, options: StreamOptions = {}): Promise<FrameSource> {
    const { segmentedIntake, waiters, outbox, streamer } = this.#assertRunning();
    options.signal?.throwIfAborted();
    const { entry, frameBytes } = await segmentedIntake.accept({ header }, options);
    return new FrameSource({
      outbox,
      entry,
      frameBytes,
      framesAccepted: await settleSpool(entry.sourcePath, frameBytes),
      framesPerSegment: outbox.segments.get(entry.id)?.framesPerSegment ?? 1,
      syncEveryMs: options.frameSyncMs ?? DEFAULT_FRAME_SYNC_MS,
      result: this.#waitWithPartials(entry.id, waiters.wait(entry, options.signal), options),
      durable: (frames) => streamer.framesDurable(entry.id, frames),
    });
  }

  async #waitWithPartials(entryId: string, result: Promise<GatewayResult>, options: StreamOptions): Promise<GatewayResult> {
    const { onPartial } = options;
    if (onPartial === undefined) return result;
    const stop = this.on('partial', (p) => {
      if (p.entryId === entryId) onPartial(p.partial);
    });
    try {
      return await result;
    } finally {
      stop();
    }
  }

  /**
   * The algorithms a run goes to under the fleet config in effect: the first matching
   * route, else the default algorithm (fleet config's first, else the `algorithm` option).
   */
  route(run: RunAttributes): string[] {
    return this.#parts?.fleet.route(run) ?? [this.config.algorithm];
  }

  /** Throws OUTBOX_FULL when the outbox cannot take another run (GATEWAY_NOT_RUNNING when not running). */
  assertRoom(): void {
    this.#assertRunning().outbox.assertRoom();
  }

  /**
   * Throws DEIDENTIFICATION_REFUSED (saying why) when the site's de-identification would
   * refuse an object with these attributes (burnedInRefusal in @arteria/deid), so that a
   * DICOM port tells the modality before it acknowledges the object, rather than after.
   * Does nothing when de-identification is off.
   */
  assertDeidentifiable(facts: BurnedInFacts): void {
    const { reid, fleet } = this.#assertRunning();
    if (reid === undefined) return;
    const refusal = burnedInRefusal(fleet.deidentificationProfile, facts);
    if (refusal !== undefined) throw refusal;
  }

  /** The fleet config in effect (undefined: local options only). */
  get activeConfig(): ActiveConfig['config'] | undefined {
    return this.#parts?.fleet.active?.config;
  }

  /** Tells the platform whether the device is in a procedure (a leading signal for scaling). */
  async setInProcedure(inProcedure: boolean): Promise<void> {
    const { connection, outbox } = this.#assertRunning();
    await connection.updateStatus({ inProcedure, outboxDepth: outbox.liveCount() });
  }

  stats(): GatewayStats {
    const parts = this.#parts;
    const open = parts !== undefined && this.#life.state !== 'closed';
    return {
      state: this.#life.state,
      connected: parts?.connection.state === 'ready',
      sent: parts?.announcer.counters.sent ?? 0,
      published: parts?.publisher.published ?? 0,
      done: parts?.announcer.counters.done ?? 0,
      failed: parts?.announcer.counters.failed ?? 0,
      pending: open ? parts.outbox.liveCount() : 0,
    };
  }

  /**
   * Stops uploads, rejects waiting callers with GATEWAY_NOT_RUNNING (their runs stay in
   * the outbox), says goodbye to the broker and closes the outbox. Every step runs even
   * if one fails. Idempotent.
   */
  close(): Promise<void> {
    return this.#life.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * The parts' close steps, each its own Lifecycle step so a failure is reported by name.
   * Close runs them last-registered-first, so they are registered bottom-up: close stops
   * publishing, lets the uploader finish, sweeps, rejects the waiters, then closes the
   * connection, status, S3 client, outbox and re-identification store.
   */
  #deferCloseSteps(parts: GatewayParts): void {
    const step = (label: string, fn: () => unknown): void =>
      this.#life.defer(label, async () => {
        try {
          await fn();
        } catch (err) {
          this.#logger.error('gateway close step failed', { step: label, ...errorFields(err) });
          throw err;
        }
      });
    step('event listeners', () => this.#emitter.removeAll());
    if (parts.reid) step('re-identification store', () => parts.reid?.close());
    step('outbox', () => parts.outbox.close());
    if (this.#givenS3 === undefined) step('S3 client', () => parts.s3.destroy());
    step('status', () => parts.status.stop());
    step('MQTT connection', () => parts.connection.close());
    step('result waiters', () => parts.waiters.rejectAll(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway closed before the result arrived; the run stays in the outbox and resumes on the next start')));
    step('abandoned-upload sweep', () => parts.sweeper.sweep());
    step('uploads', () => parts.uploader.stopped());
    step('segmented runs', () => parts.streamer.stopped());
    step('whole files sent whole after all', () => parts.wholeFiles.stopped());
    step('publishing', () => {
      this.#lifetime.abort(new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closing'));
      for (const timer of this.#timers.splice(0)) clearInterval(timer);
      parts.publisher.stop();
      parts.abandoner.stop();
    });
  }

  #assertRunning(): GatewayParts {
    if (this.#life.state !== 'running' || this.#parts === undefined) {
      const hint = this.#life.state === 'new' || this.#life.state === 'starting' ? '; await start() first' : '';
      throw new ArteriaError('GATEWAY_NOT_RUNNING', `the gateway is ${this.#life.state}${hint}`);
    }
    return this.#parts;
  }
}
