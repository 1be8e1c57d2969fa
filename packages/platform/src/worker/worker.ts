import { hostname } from 'node:os';
import { ArteriaError, INPUT_ERROR_CODES, encodePayload, epochNow, resultDigest, toArteriaError, type AlgorithmRef, type ResultV1, type Timings } from '@arteria/protocol';
import { decodeTask } from '../ingest/task.js';
import type { RequestLedger } from '../ledger/index.js';
import type { PlatformMetrics } from '../metrics/metrics.js';
import type { Lease, WorkQueue } from '../queue/work-queue.js';
import type { ResultPublisher } from '../results/result-publisher.js';
import type { InputSource } from '../storage/input-source.js';
import { assertInputInScope } from '../storage/verify.js';

/** Runs the pinned algorithm version on one input, isolated from the worker. */
export interface AlgorithmExecutor {
  execute(algorithm: AlgorithmRef, input: Buffer, signal: AbortSignal): Promise<{ output: unknown }>;
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
}

export interface WorkerSettings {
  visibilityMs: number;
  leaseWaitMs: number;
  maxInputBytes: number;
  /** Same as the queue's: the last delivery of a retryable failure answers the device. */
  maxDeliveries: number;
}

export type WorkerState = 'idle' | 'running' | 'draining' | 'stopped';

/**
 * One worker: lease a task, fetch its input, run the algorithm, publish the result,
 * record it, then ack. Every step is idempotent, so a crash anywhere only means the
 * task is delivered again after its visibility timeout.
 */
export class Worker {
  #state: WorkerState = 'idle';
  #busy = false;
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

  get busy(): boolean {
    return this.#busy;
  }

  start(): void {
    if (this.#state !== 'idle') throw new Error(`worker cannot start from state ${this.#state}`);
    this.#state = 'running';
    this.#loop = this.#run();
  }

  /** Stops leasing, lets the current task finish, resolves when stopped. Idempotent. */
  async drain(): Promise<void> {
    if (this.#state === 'running') this.#state = 'draining';
    this.#stop.abort();
    await this.#loop;
    this.#state = 'stopped';
  }

  async #run(): Promise<void> {
    const { queue } = this.#deps;
    while (this.#state === 'running') {
      let leases: Lease[];
      try {
        leases = await queue.lease({ max: 1, visibilityMs: this.#settings.visibilityMs, waitMs: this.#settings.leaseWaitMs, signal: this.#stop.signal });
      } catch (err) {
        if (this.#state !== 'running') break;
        this.#deps.onError?.(toArteriaError(err, 'QUEUE_UNAVAILABLE'));
        await delay(500);
        continue;
      }
      for (const lease of leases) {
        this.#busy = true;
        try {
          await this.#process(lease);
        } catch (err) {
          // The task stays leased and comes back after its visibility timeout.
          this.#deps.onError?.(toArteriaError(err));
        } finally {
          this.#busy = false;
        }
      }
    }
  }

  async #process(lease: Lease): Promise<void> {
    const { queue, ledger, inputs, executor, results, metrics } = this.#deps;
    const leased = epochNow();
    let task;
    try {
      task = decodeTask(lease.payload);
    } catch (err) {
      await queue.deadLetter(lease, `undecodable task: ${(err as Error).message}`);
      return;
    }
    const { request, algorithm } = task;
    const previous = await ledger.get(request.id);
    if (previous?.state === 'completed') {
      await queue.ack(lease); // answered before a crash took the ack with it
      return;
    }
    const timings: Timings = { ...request.timings, leased };
    const work = new AbortController();
    const heartbeat = setInterval(() => {
      queue.extend(lease, this.#settings.visibilityMs).catch((err: unknown) => {
        work.abort(err); // the lease is gone: another worker has the task now
      });
    }, Math.max(100, this.#settings.visibilityMs / 3));
    let result: ResultV1;
    try {
      if (request.deadline !== undefined && request.deadline < leased) {
        throw new ArteriaError('DEADLINE_EXCEEDED', `deadline passed ${Math.round(leased - request.deadline)} ms before a worker took the request`);
      }
      const [input] = request.inputs;
      if (input === undefined) throw new ArteriaError('INVALID_REQUEST', 'inputs: empty');
      assertInputInScope(input, request); // again here: a task does not prove where it came from
      const bytes = await inputs.fetch(input, { maxBytes: this.#settings.maxInputBytes, signal: work.signal });
      timings.fetched = epochNow();
      const { output } = await executor.execute(algorithm, bytes, work.signal);
      timings.computed = epochNow();
      result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status: 'ok', algorithm, output, timings };
    } catch (err) {
      const error = toArteriaError(err);
      if (error.retryable && lease.deliveries < this.#settings.maxDeliveries) {
        clearInterval(heartbeat);
        const delayMs = Math.min(30_000, 250 * 2 ** (lease.deliveries - 1));
        await queue.nack(lease, { delayMs, reason: `${error.code}: ${error.message}` });
        return;
      }
      const code = error.retryable ? 'DEAD_LETTERED' : error.code;
      const message = error.retryable ? `gave up after ${lease.deliveries} deliveries: ${error.code}: ${error.message}` : error.message;
      // An input outside the requester's prefix is refused like at admission.
      const status = INPUT_ERROR_CODES.has(error.code) || error.code === 'NOT_AUTHORIZED' ? 'rejected' : 'failed';
      result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status, algorithm, error: { code, message: message.slice(0, 2000) }, timings };
    } finally {
      clearInterval(heartbeat);
    }
    result.timings.resultPublished = epochNow();
    result = fitsPayload(result);
    // The digest the ledger's chain record will carry: the device can cite it in an audit.
    result.recordHash = resultDigest(result);
    await results.publish(result);
    await ledger.recordResult(result, { worker: this.#deps.name ?? `${hostname()}:${process.pid}` });
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
