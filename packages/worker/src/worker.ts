import { hostname } from 'node:os';
import { ArteriaError, INPUT_ERROR_CODES, Lifecycle, type LifecycleState, encodePayload, epochNow, toArteriaError, type AlgorithmRef, type ResultV1, type Timings } from '@arteria/protocol';
import { ATTR, SpanKind, SpanStatusCode, contextOf, noTracing, traceContextOf, traceIdOf, within, type Span, type Tracer, quietLogger, type Logger, logRequestEvent, type PlatformMetrics } from '@arteria/telemetry';
import { decodeTask, type TaskV1, type RequestLedger, type Lease, type WorkQueue, type ResultPublisher, type InputSource, assertAcceptedSize, assertInputInScope } from '@arteria/ports';
import type { StreamSource } from './algorithms/sandbox-feed.js';
import type { ShadowRunner } from './shadow-runner.js';
import type { SegmentedSteps } from './segmented/segmented-steps.js';
import { runSegmentedTask } from './segmented/segmented-task.js';
import { LeaseHold, lostLease, startLeaseHeartbeat } from './lease-heartbeat.js';

/**
 * Runs the pinned algorithm version on one input, isolated from the worker, as the
 * input streams in. Resolves only once the input has been read to its end and passed
 * its checks; rejects with the input's error when it fails them.
 */
export interface AlgorithmExecutor {
  /** `requireDeidentified`: refuse an input that does not declare de-identification (DEIDENTIFICATION_MISSING). */
  execute(algorithm: AlgorithmRef, input: StreamSource, signal: AbortSignal, options?: { requireDeidentified?: boolean }): Promise<{ output: unknown }>;
  /**
   * True when a run of `algorithm` started now would go at once to a thread that takes
   * whole runs only: the worker then reads and checks the input whole and passes it as
   * one chunk, which such a thread takes without copying (a stream it would gather into
   * one buffer: a copy of the run). Absent or false: the input is streamed.
   */
  wantsWholeInput?(algorithm: AlgorithmRef): boolean;
}

export interface WorkerDeps {
  queue: WorkQueue;
  ledger: RequestLedger;
  /** Where inputs are read from, size- and SHA-256-checked. */
  inputs: InputSource;
  executor: AlgorithmExecutor;
  results: ResultPublisher;
  metrics?: PlatformMetrics;
  onError?: (error: Error) => void;
  /** Recorded in the ledger beside each result; default host:pid. */
  name?: string;
  /** The process's logger: one line per lease, computation, retry, failure, dead letter and delivery. */
  logger?: Logger;
  /** Runs a shadow version on a share of the delivered requests, after delivery (never delivered itself). */
  shadow?: ShadowRunner;
  /** Runs the steps of segmented runs (runs sent while they are acquired); absent: they are answered NOT_INCREMENTAL. */
  segmented?: SegmentedSteps;
  /** Where queue-wait and worker spans go; default: the no-op tracer (trace contexts still pass through to the result). */
  tracer?: Tracer;
}

export interface WorkerSettings {
  visibilityMs: number;
  leaseWaitMs: number;
  maxInputBytes: number;
  /** Same as the queue's: the last delivery of a retryable failure answers the device. */
  maxDeliveries: number;
  /** A segmented run that folds no new segment for this long ends RUN_EXPIRED (default 30 min). */
  segmentedRunIdleMs?: number;
}

interface DeliverOptions {
  /** Only a result this delivery recorded is published (a segmented run's steps: the one that recorded publishes). */
  onlyRecorded?: boolean;
  /** Runs once the result is published, before the task is settled (a failure leaves the task to come back). */
  beforeAck?: () => Promise<void>;
}

/**
 * One worker: lease a task, fetch its input, run the algorithm, record the result in the
 * ledger, publish it, then ack. Every step is idempotent, so a crash anywhere only means
 * the task is delivered again after its visibility timeout; a task whose result is
 * already recorded is published again from the ledger, never computed again.
 */
export class Worker implements AsyncDisposable {
  readonly #life = new Lifecycle('worker');
  #busy = false;
  readonly #stop = new AbortController();
  readonly #deps: WorkerDeps;
  readonly #settings: WorkerSettings;
  readonly #log: Logger;
  readonly #tracer: Tracer;
  /** Recorded beside each result (asked of the system once, not per result). */
  readonly #name: string;

  constructor(deps: WorkerDeps, settings: WorkerSettings) {
    this.#deps = deps;
    this.#name = deps.name ?? `${hostname()}:${process.pid}`;
    this.#settings = settings;
    this.#log = deps.logger ?? quietLogger();
    this.#tracer = deps.tracer ?? noTracing().tracer;
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  get busy(): boolean {
    return this.#busy;
  }

  /** Starts leasing tasks (ILLEGAL_STATE when started twice or after close). */
  start(): void {
    this.#life.begin();
    const loop = this.#run();
    this.#life.defer('work loop', () => {
      // Only the wait for a lease is cut short: a task in hand runs to its end.
      this.#stop.abort();
      return loop;
    });
  }

  /** Stops leasing, lets the current task finish, then closes; memoised. */
  drain(): Promise<void> {
    return this.#life.drainAndClose(() => this.#stop.abort());
  }

  /** The same as drain() (no task is cut off mid-way), without passing through `draining`. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #run(): Promise<void> {
    const { queue } = this.#deps;
    while (this.#life.running) {
      let leases: Lease[];
      // Before the call: the queue counts each lease's visibility from a later moment.
      const askedAt = Date.now();
      try {
        leases = await queue.lease({ max: 1, visibilityMs: this.#settings.visibilityMs, waitMs: this.#settings.leaseWaitMs, signal: this.#stop.signal });
      } catch (err) {
        if (!this.#life.running) break;
        this.#deps.onError?.(toArteriaError(err, 'QUEUE_UNAVAILABLE'));
        await delay(500);
        continue;
      }
      for (const lease of leases) {
        this.#busy = true;
        try {
          await this.#process(lease, new LeaseHold(askedAt, this.#settings.visibilityMs));
        } catch (err) {
          // The task stays leased and comes back after its visibility timeout.
          this.#deps.onError?.(toArteriaError(err));
        } finally {
          this.#busy = false;
        }
      }
    }
  }

  async #process(lease: Lease, hold: LeaseHold): Promise<void> {
    const { queue, ledger } = this.#deps;
    const leased = epochNow();
    let task;
    try {
      task = decodeTask(lease.payload);
    } catch (err) {
      const reason = `undecodable task: ${(err as Error).message}`;
      this.#log.error({ event: 'dead-lettered', taskId: lease.taskId, requestId: lease.dedupeId, deliveries: lease.deliveries, code: 'INVALID_REQUEST', reason: reason.slice(0, 500) }, 'request dead-lettered');
      await queue.deadLetter(lease, reason);
      return;
    }
    const { request, algorithm } = task;
    const who = { requestId: request.id, tenant: request.tenant, device: request.device, algorithm, deliveries: lease.deliveries, traceId: traceIdOf(task.trace) };
    // The first delivery of a request's own task (queued by admission under the request's id)
    // is computed without a lookup: admission queues it only for a request with no recorded
    // result, and should one be recorded meanwhile (a rare second copy), recording returns
    // the result that stands and publishes it only if nobody did. Later deliveries, replays
    // (queued under another id) and the steps of segmented runs look first.
    const firstOfItsKind = lease.deliveries === 1 && task.segmented === undefined && lease.dedupeId === request.id;
    const previous = firstOfItsKind ? undefined : await ledger.get(request.id);
    if (previous?.state === 'completed') {
      // Recorded already: never computed again. Published (the ledger says the broker took
      // it): this is a lost ack, after a queue restart for instance, so acknowledge only.
      // Not published: the worker that recorded it crashed first, so publish it now.
      const republish = previous.publishedAt === undefined;
      // A segmented run has a task per step, and another step's worker may have recorded the
      // result a moment ago and be publishing it: look again once it has had a lease's time.
      if (republish && task.segmented !== undefined && Date.now() - previous.completedAt < this.#settings.visibilityMs) {
        await this.#persist('put the task back', () => queue.nack(lease, { delayMs: this.#settings.visibilityMs, reason: 'its run\'s result was recorded by another step and is being published' }));
        return;
      }
      this.#log.info(
        { event: 'redelivered', ...who, algorithm: `${algorithm.name}@${algorithm.version}`, republish },
        `task ${request.id} delivered again (${lease.deliveries}) after its result was recorded: ${republish ? 'publishing the recorded result (it was never published)' : 'acknowledging only (it was published)'}`,
      );
      if (republish) await this.#publish(previous.result);
      if (task.segmented !== undefined) {
        // The run is over (answered, or abandoned by its device): what is left of it here and in the store goes.
        await this.#deps.segmented?.forget(task);
        // An abandon step looks again once a lease's time has passed: a step of the run that another process was working on meanwhile may have parked or written after the first look.
        if (task.segmented.phase === 'abandon' && lease.deliveries === 1) {
          await this.#persist('put the abandon step back', () => queue.nack(lease, { delayMs: this.#settings.visibilityMs, reason: 'its run is released once more after any step in progress elsewhere' }));
          return;
        }
      }
      await this.#persist('acknowledge the task', () => queue.ack(lease));
      return;
    }
    const span = this.#taskSpans(task, lease, leased);
    try {
      if (task.segmented === undefined) await this.#compute(lease, task, leased, span, hold);
      else {
        const { maxDeliveries } = this.#settings;
        // Two steps of one run can reach its end at once (two workers folding its last segments): only the recorded one publishes.
        const deliver = async (result: ResultV1, release: () => Promise<void>): Promise<void> => {
          await this.#deliver(lease, task, result, span, hold, { onlyRecorded: true, beforeAck: release });
        };
        const onRetry = (error: ArteriaError, delayMs: number): void => logRequestEvent(this.#log, 'retried', { ...who, code: error.code, reason: `${error.message} (again in ${delayMs} ms)` });
        const onMissedBeat = (error: ArteriaError): void => this.#missedBeat(who, error);
        const idle = this.#settings.segmentedRunIdleMs === undefined ? {} : { runIdleMs: this.#settings.segmentedRunIdleMs };
        await runSegmentedTask(lease, task, leased, { queue, steps: this.#deps.segmented, hold, maxDeliveries, deliver, onRetry, onMissedBeat, ...idle });
      }
    } catch (err) {
      const error = toArteriaError(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * The task's spans under admission's: `arteria.queue.wait` (enqueued to leased) and
   * `arteria.worker.task` (leased to settled), which is returned open.
   */
  #taskSpans(task: TaskV1, lease: Lease, leased: number): Span {
    const { request, algorithm } = task;
    const parent = contextOf(task.trace);
    const attributes = {
      [ATTR.requestId]: request.id,
      [ATTR.tenant]: request.tenant,
      [ATTR.device]: request.device,
      [ATTR.algorithm]: `${algorithm.name}@${algorithm.version}`,
      [ATTR.deliveries]: lease.deliveries,
    };
    const enqueued = request.timings.enqueued;
    if (enqueued !== undefined) this.#tracer.startSpan('arteria.queue.wait', { startTime: enqueued, attributes }, parent).end(leased);
    return this.#tracer.startSpan('arteria.worker.task', { kind: SpanKind.CONSUMER, startTime: leased, attributes }, parent);
  }

  async #compute(lease: Lease, task: TaskV1, leased: number, span: Span, hold: LeaseHold): Promise<void> {
    const { queue, inputs, executor } = this.#deps;
    const { request, algorithm } = task;
    const who = { requestId: request.id, tenant: request.tenant, device: request.device, algorithm, deliveries: lease.deliveries, traceId: traceIdOf(task.trace) };
    const step = (name: string, startTime: number, endTime: number): void => {
      this.#tracer.startSpan(name, { startTime, attributes: { [ATTR.requestId]: request.id } }, within(span)).end(endTime);
    };
    const timings: Timings = { ...request.timings, leased };
    logRequestEvent(this.#log, 'leased', { ...who, timings });
    const work = new AbortController();
    const stopHeartbeat = startLeaseHeartbeat(queue, lease, hold, work, (error) => this.#missedBeat(who, error));
    let result: ResultV1;
    try {
      if (request.deadline !== undefined && request.deadline < leased) {
        throw new ArteriaError('DEADLINE_EXCEEDED', `deadline passed ${Math.round(leased - request.deadline)} ms before a worker took the request`);
      }
      const [input] = request.inputs;
      if (input === undefined) throw new ArteriaError('INVALID_REQUEST', 'inputs: empty');
      assertInputInScope(input, request); // again here: a task does not prove where it came from
      assertAcceptedSize(input, this.#settings.maxInputBytes);
      // Identified inputs run only where ingest stamped the tenant's consent on the task.
      const options = { requireDeidentified: task.identifiedInputs !== 'allow' };
      const fetchOptions = { maxBytes: this.#settings.maxInputBytes, signal: work.signal };
      let output: unknown;
      let computing: number;
      if (executor.wantsWholeInput?.(algorithm) === true) {
        // A whole-run algorithm with a thread free: one buffer, read and checked, handed over
        // as one chunk without a copy (a stream would be gathered into one in the thread).
        const bytes = await inputs.fetch(input, fetchOptions);
        timings.fetched = epochNow();
        computing = timings.fetched;
        ({ output } = await executor.execute(algorithm, { chunks: oneChunk(bytes), size: input.size }, work.signal, options));
      } else {
        // Fetching, checking, decoding and computing overlap: frames reach the algorithm as
        // they are read, and the result is released only once the whole input has passed
        // its size and SHA-256 checks.
        const opened = await openedStream(inputs.stream(input, fetchOptions), () => (timings.fetched = epochNow()));
        computing = epochNow();
        try {
          ({ output } = await executor.execute(algorithm, { chunks: opened.chunks, size: input.size }, work.signal, options));
        } finally {
          await opened.close();
        }
      }
      timings.computed = epochNow();
      // Fetch and compute overlap (frames reach the algorithm as they are read).
      if (timings.fetched !== undefined) step('arteria.worker.fetch', leased, timings.fetched);
      step('arteria.worker.compute', computing, timings.computed);
      logRequestEvent(this.#log, 'computed', { ...who, timings });
      result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status: 'ok', algorithm, output, timings };
    } catch (err) {
      const error = toArteriaError(err);
      span.setAttribute(ATTR.errorCode, error.code);
      if (lostLease(error, work.signal)) {
        // Not this task's failure: another delivery holds it now and answers. Recording
        // anything here would make that answer this one (the first recorded result stands).
        span.setAttribute(ATTR.outcome, 'lease-lost');
        this.#log.info({ event: 'lease-lost', ...who, algorithm: `${algorithm.name}@${algorithm.version}` }, `task ${request.id}: its lease passed to another delivery while this one computed; that delivery answers`);
        return;
      }
      if (error.retryable && lease.deliveries < this.#settings.maxDeliveries) {
        span.setAttribute(ATTR.outcome, 'retried');
        stopHeartbeat();
        const delayMs = Math.min(30_000, 250 * 2 ** (lease.deliveries - 1));
        logRequestEvent(this.#log, 'retried', { ...who, code: error.code, reason: `${error.message} (again in ${delayMs} ms)`, timings });
        await queue.nack(lease, { delayMs, reason: `${error.code}: ${error.message}` });
        return;
      }
      const code = error.retryable ? 'DEAD_LETTERED' : error.code;
      const message = error.retryable ? `gave up after ${lease.deliveries} deliveries: ${error.code}: ${error.message}` : error.message;
      // An input outside the requester's prefix is refused like at admission.
      const status = INPUT_ERROR_CODES.has(error.code) || error.code === 'NOT_AUTHORIZED' ? 'rejected' : 'failed';
      result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status, algorithm, error: { code, message: message.slice(0, 2000) }, timings };
    } finally {
      stopHeartbeat();
    }
    span.setAttribute(ATTR.outcome, result.status);
    // Record and publish: the result carries this span's context back to the device.
    const publishing = this.#tracer.startSpan('arteria.worker.publish', { kind: SpanKind.PRODUCER, attributes: { [ATTR.requestId]: request.id } }, within(span));
    let delivered: ResultV1 | undefined;
    try {
      delivered = await this.#deliver(lease, task, result, publishing, hold);
    } finally {
      publishing.end();
    }
    // After delivery and ack: a shadow run can neither delay nor change what the device got.
    const shadow = this.#deps.shadow;
    if (delivered !== undefined && shadow?.wants(delivered) !== undefined) {
      await shadow.run(request, delivered, this.#stop.signal).catch((err: unknown) => this.#deps.onError?.(toArteriaError(err)));
    }
  }

  /**
   * Records the result in the ledger, publishes it (unless another delivery did) and settles
   * the task; returns what the device got, or undefined when the lease passed to another delivery.
   */
  async #deliver(lease: Lease, task: TaskV1, computed: ResultV1, publishing: Span, hold: LeaseHold, options: DeliverOptions = {}): Promise<ResultV1 | undefined> {
    const { queue, ledger, metrics } = this.#deps;
    const { request, algorithm } = task;
    const who = { requestId: request.id, tenant: request.tenant, device: request.device, algorithm, deliveries: lease.deliveries, traceId: traceIdOf(task.trace) };
    const trace = traceContextOf(publishing);
    let result: ResultV1 = { ...computed, ...(trace === undefined ? {} : { trace }) };
    result.timings.resultPublished = epochNow();
    result = fitsPayload(result);
    // recordHash comes from the ledger, which hashes the result as it chains it and returns
    // it with that digest (what the device can cite in an audit).
    // Record, then publish: what the device receives is always what the ledger holds. A
    // crash in between leaves a recorded result that the redelivered task publishes.
    const resultToRecord = result;
    // The first result recorded stands: when another delivery of this task got there
    // first, the device gets that one.
    const standing = await this.#persist('record the result', () => ledger.recordResult(resultToRecord, { worker: this.#name }));
    // Another task's result recorded first (a segmented run's other step): that task publishes it, or its redelivery does.
    const othersRecorded = options.onlyRecorded === true && !standing.recorded;
    result = standing.result;
    // Still this task's holder? A queue outage between the lease's last extension and here
    // may have let it run out: then the task's next delivery publishes, and this one must
    // not. Held for at least half a visibility more: no need to ask the queue.
    const holding = hold.remainingMs() > hold.visibilityMs / 2 || (await this.#confirmLease(lease, hold));
    if (!holding) {
      this.#log.info({ event: 'lease-lost', ...who, algorithm: `${algorithm.name}@${algorithm.version}` }, `task ${request.id}: its lease passed to another delivery during an outage; that delivery publishes the recorded result`);
      return;
    }
    // Another delivery of this task published the recorded result already.
    if (standing.publishedAt === undefined && !othersRecorded) await this.#publish(result);
    metrics?.observeResult(result);
    const deadLetter = result.error?.code === 'DEAD_LETTERED' ? result.error.message : undefined;
    const outcome = { ...who, algorithm: result.algorithm ?? algorithm, timings: result.timings };
    if (result.error !== undefined) logRequestEvent(this.#log, deadLetter === undefined ? 'failed' : 'dead-lettered', { ...outcome, code: result.error.code, reason: result.error.message });
    logRequestEvent(this.#log, 'delivered', { ...outcome, status: result.status, ...(result.error ? { code: result.error.code } : {}) });
    if (options.beforeAck !== undefined) await this.#persist('release the run', options.beforeAck);
    // A lost ack means a redelivery and a second publish: hold on to it through a queue outage.
    await this.#persist('acknowledge the task', () => (deadLetter === undefined ? queue.ack(lease) : queue.deadLetter(lease, deadLetter)));
    return result;
  }

  /** Extends the lease to learn whether it is still this worker's (false: LEASE_LOST). */
  async #confirmLease(lease: Lease, hold: LeaseHold): Promise<boolean> {
    const askedAt = Date.now();
    try {
      await this.#persist('confirm the lease', () => this.#deps.queue.extend(lease, hold.visibilityMs));
      hold.extended(askedAt);
      return true;
    } catch (err) {
      if (toArteriaError(err).code === 'LEASE_LOST') return false;
      throw err;
    }
  }

  /** Publishes a recorded result, then notes in the ledger that it was published. */
  async #publish(result: ResultV1): Promise<void> {
    await this.#deps.results.publish(result);
    await this.#persist('note the result as published', () => this.#deps.ledger.markPublished(result.requestId, epochNow()));
  }

  /** A lease extension that failed for another reason than a lost lease: the work goes on. */
  #missedBeat(who: { requestId: string; deliveries: number }, error: ArteriaError): void {
    this.#log.warn({ event: 'lease-extension-failed', ...who, code: error.code }, `task ${who.requestId}: could not extend its lease (${error.message}); still working, the next extension tries again`);
  }

  /**
   * Runs a step after the computation, retrying through a short queue or ledger outage
   * (a NATS restart) for up to twice the visibility timeout: giving up means the task is
   * delivered again, which costs a second publish, or a second computation when the
   * result was not recorded yet.
   */
  async #persist<T>(step: string, fn: () => Promise<T>): Promise<T> {
    const end = Date.now() + 2 * this.#settings.visibilityMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const error = toArteriaError(err, 'QUEUE_UNAVAILABLE');
        if (!error.retryable || Date.now() > end) throw error;
        if (attempt === 0) this.#deps.onError?.(new ArteriaError(error.code, `could not ${step} (${error.message}); retrying until the queue and ledger answer`, { cause: err }));
        await delay(Math.min(2_000, 100 * 2 ** attempt));
      }
    }
  }
}

/**
 * Reads the first chunk before the algorithm is involved, so a missing or unreadable input
 * fails as it always did, ahead of any algorithm error; `onEnd` stamps the end of the read.
 */
async function openedStream(chunks: AsyncIterable<Buffer>, onEnd: () => void): Promise<{ chunks: AsyncIterable<Buffer>; close: () => Promise<void> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  async function* rest(): AsyncGenerator<Buffer> {
    let done = false;
    try {
      if (first.done !== true) yield first.value;
      for (let next = first; next.done !== true; ) {
        next = await iterator.next();
        if (next.done !== true) yield next.value;
      }
      done = true;
      onEnd();
    } finally {
      if (!done) await iterator.return?.();
    }
  }
  // close() releases the input (its file or connection) even when the algorithm never read it.
  return { chunks: rest(), close: async () => void (await iterator.return?.()) };
}

async function* oneChunk(bytes: Buffer): AsyncGenerator<Buffer> {
  yield await Promise.resolve(bytes);
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A result too large for MQTT becomes a failure the device can read, instead of a retry loop. */
function fitsPayload(result: ResultV1): ResultV1 {
  try {
    encodePayload(result);
    return result;
  } catch (err) {
    const { output: _dropped, ...rest } = result;
    return { ...rest, status: 'failed', error: { code: 'OUTPUT_INVALID', message: `result does not fit an MQTT message: ${(err as Error).message}` } };
  }
}
