import type { S3Client } from '@aws-sdk/client-s3';
import { ArteriaError, INPUT_ERROR_CODES, encodePayload, epochNow, toArteriaError, type AlgorithmRef, type ResultV1, type Timings } from '@arteria/protocol';
import { decodeTask } from '../ingest/task.js';
import type { RequestLedger } from '../ledger/index.js';
import type { PlatformMetrics } from '../metrics/metrics.js';
import type { Lease, WorkQueue } from '../queue/work-queue.js';
import type { ResultPublisher } from '../results/result-publisher.js';
import { fetchInput } from '../storage/s3.js';

/** Runs the pinned algorithm version on one input, isolated from the worker. */
export interface AlgorithmExecutor {
  execute(algorithm: AlgorithmRef, input: Buffer, signal: AbortSignal): Promise<{ output: unknown }>;
}

export interface WorkerDeps {
  queue: WorkQueue;
  ledger: RequestLedger;
  storage: S3Client;
  executor: AlgorithmExecutor;
  results: ResultPublisher;
  metrics?: PlatformMetrics;
  onError?: (error: Error) => void;
}

export interface WorkerSettings {
  visibilityMs: number;
  leaseWaitMs: number;
  maxInputBytes: number;
  /** Same as the queue's: the last delivery of a retryable failure answers the device. */
  maxDeliveries: number;
}

export type WorkerState = 'idle' | 'running' | 'draining' | 'stopped';

/** A leased task whose input is fetched (or whose fetch failed), ready to run. */
interface Prepared {
  lease: Lease;
  task: ReturnType<typeof decodeTask>;
  timings: Timings;
  work: AbortController;
  heartbeat: ReturnType<typeof setInterval>;
  /** The input bytes, or why there are none. */
  input: { bytes: Buffer } | { error: unknown };
}

/**
 * One worker: lease a task, fetch its input, run the algorithm, publish the result,
 * record it, then ack. Every step is idempotent, so a crash anywhere only means the
 * task is delivered again after its visibility timeout.
 *
 * While one task runs in its algorithm thread, the worker already fetches the next one
 * when the queue has a backlog (one task ahead, its lease kept alive by its own heartbeat),
 * so the algorithm threads do not sit idle while inputs cross the network. It never waits
 * for work to take one ahead: a task arriving while it is busy goes to an idle worker.
 */
export class Worker {
  #state: WorkerState = 'idle';
  #held = 0;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  readonly #deps: WorkerDeps;
  readonly #settings: WorkerSettings;

  constructor(deps: WorkerDeps, settings: WorkerSettings) {
    this.#deps = deps;
    this.#settings = settings;
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** Whether this worker holds a leased task (running, or fetched and next in line). */
  get busy(): boolean {
    return this.#held > 0;
  }

  start(): void {
    if (this.#state !== 'idle') throw new Error(`worker cannot start from state ${this.#state}`);
    this.#state = 'running';
    this.#loop = this.#run();
  }

  /** Stops leasing, lets the tasks in hand finish, resolves when stopped. Idempotent. */
  async drain(): Promise<void> {
    if (this.#state === 'running') this.#state = 'draining';
    this.#stop.abort();
    await this.#loop;
    this.#state = 'stopped';
  }

  async #run(): Promise<void> {
    let next = this.#acquire(this.#settings.leaseWaitMs);
    for (;;) {
      let ready: Prepared | undefined;
      try {
        ready = await next;
      } catch (err) {
        // Only a bug gets here: #acquire answers every failure it expects.
        this.#deps.onError?.(toArteriaError(err));
      }
      if (ready === undefined) {
        if (this.#state !== 'running') return;
        next = this.#acquire(this.#settings.leaseWaitMs);
        continue;
      }
      // Fetch the next ready task, if any, while this one computes.
      next = this.#state === 'running' ? this.#acquire(0) : Promise.resolve(undefined);
      try {
        await this.#complete(ready);
      } catch (err) {
        // The task stays leased and comes back after its visibility timeout.
        this.#deps.onError?.(toArteriaError(err));
      } finally {
        clearInterval(ready.heartbeat);
        this.#held -= 1;
      }
    }
  }

  /** Leases one task (waiting up to `waitMs` for one) and fetches its input; undefined when nothing was leased. */
  async #acquire(waitMs: number): Promise<Prepared | undefined> {
    const { queue, ledger } = this.#deps;
    let leases: Lease[];
    try {
      leases = await queue.lease({ max: 1, visibilityMs: this.#settings.visibilityMs, waitMs, signal: this.#stop.signal });
    } catch (err) {
      if (this.#state !== 'running') return undefined;
      this.#deps.onError?.(toArteriaError(err, 'QUEUE_UNAVAILABLE'));
      await delay(500);
      return undefined;
    }
    const [lease] = leases;
    if (lease === undefined) return undefined;
    this.#held += 1;
    let settled = false;
    try {
      const leased = epochNow();
      let task;
      try {
        task = decodeTask(lease.payload);
      } catch (err) {
        await queue.deadLetter(lease, `undecodable task: ${(err as Error).message}`);
        return undefined;
      }
      const previous = await ledger.get(task.request.id);
      if (previous?.state === 'completed') {
        await queue.ack(lease); // answered before a crash took the ack with it
        return undefined;
      }
      const work = new AbortController();
      const heartbeat = setInterval(() => {
        queue.extend(lease, this.#settings.visibilityMs).catch((err: unknown) => {
          work.abort(err); // the lease is gone: another worker has the task now
        });
      }, Math.max(100, this.#settings.visibilityMs / 3));
      settled = true;
      const timings: Timings = { ...task.request.timings, leased };
      return { lease, task, timings, work, heartbeat, input: await this.#fetch(task.request, leased, work.signal, timings) };
    } catch (err) {
      // The task stays leased and comes back after its visibility timeout.
      this.#deps.onError?.(toArteriaError(err));
      return undefined;
    } finally {
      if (!settled) this.#held -= 1;
    }
  }

  async #fetch(request: ReturnType<typeof decodeTask>['request'], leased: number, signal: AbortSignal, timings: Timings): Promise<Prepared['input']> {
    try {
      if (request.deadline !== undefined && request.deadline < leased) {
        throw new ArteriaError('DEADLINE_EXCEEDED', `deadline passed ${Math.round(leased - request.deadline)} ms before a worker took the request`);
      }
      const [input] = request.inputs;
      if (input === undefined) throw new ArteriaError('INVALID_REQUEST', 'inputs: empty');
      const bytes = await fetchInput(this.#deps.storage, input, { maxBytes: this.#settings.maxInputBytes, signal });
      timings.fetched = epochNow();
      return { bytes };
    } catch (error) {
      return { error };
    }
  }

  async #complete(ready: Prepared): Promise<void> {
    const { queue, ledger, executor, results, metrics } = this.#deps;
    const { lease, task, timings, work } = ready;
    const { request, algorithm } = task;
    let result: ResultV1;
    try {
      if ('error' in ready.input) throw ready.input.error;
      const { output } = await executor.execute(algorithm, ready.input.bytes, work.signal);
      timings.computed = epochNow();
      result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status: 'ok', algorithm, output, timings };
    } catch (err) {
      const error = toArteriaError(err);
      if (error.retryable && lease.deliveries < this.#settings.maxDeliveries) {
        clearInterval(ready.heartbeat);
        const delayMs = Math.min(30_000, 250 * 2 ** (lease.deliveries - 1));
        await queue.nack(lease, { delayMs, reason: `${error.code}: ${error.message}` });
        return;
      }
      const code = error.retryable ? 'DEAD_LETTERED' : error.code;
      const message = error.retryable ? `gave up after ${lease.deliveries} deliveries: ${error.code}: ${error.message}` : error.message;
      const status = INPUT_ERROR_CODES.has(error.code) ? 'rejected' : 'failed';
      result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status, algorithm, error: { code, message: message.slice(0, 2000) }, timings };
    } finally {
      clearInterval(ready.heartbeat);
    }
    result.timings.resultPublished = epochNow();
    result = fitsPayload(result);
    await results.publish(result);
    await ledger.recordResult(result);
    metrics?.observeResult(result);
    if (result.error?.code === 'DEAD_LETTERED') {
      await queue.deadLetter(lease, result.error.message);
    } else {
      await queue.ack(lease);
    }
  }
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
