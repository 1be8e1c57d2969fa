import { ArteriaError, Lifecycle, toArteriaError, type LifecycleState } from '@arteria/protocol';
import type { RegisteredAlgorithm } from './registry.js';
import type { StreamSource } from './sandbox-feed.js';
import { VersionPool, type PendingTask, type PoolCounters, type PoolEnv, type RunResult } from './sandbox-pool.js';

export type { RunResult } from './sandbox-pool.js';
export type { StreamSource } from './sandbox-feed.js';

export interface AlgorithmRunnerOptions {
  /** Warm threads kept per algorithm version; tasks beyond them wait. Default 1. */
  threadsPerAlgorithm?: number;
  /** Longest a fresh thread may take to import its algorithm. Default 30 000. */
  startupTimeoutMs?: number;
  /** V8 young-generation limit per thread; default memoryMb / 8, between 4 and 64. */
  youngGenerationMb?: number;
  /**
   * Module loaded in each thread of an algorithm with a model: its default export
   * `(model: {name, digest, path}) => InferenceBackend | Promise<InferenceBackend>` gives
   * the algorithm `context.inference`; the model is loaded once when the thread starts.
   */
  inferenceModule?: string | URL;
}

export interface RunOptions {
  /** Aborting rejects the run at once with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Refuse a run whose header does not declare de-identification (Patient Identity Removed
   * YES and a De-identification Method) with DEIDENTIFICATION_MISSING, before the algorithm
   * sees it. Default false: the runner also serves tools on local files (`arteria algorithm test`).
   */
  requireDeidentified?: boolean;
}

export interface RunnerStats extends PoolCounters {
  /** Tasks waiting for a thread. */
  queued: number;
}

interface RunnerConfig {
  readonly threadsPerAlgorithm: number;
  readonly startupTimeoutMs: number;
  readonly youngGenerationMb: number | undefined;
  readonly inferenceModuleUrl: string | undefined;
}

const poolKey = (algorithm: RegisteredAlgorithm): string => `${algorithm.digest}\0${algorithm.dir}`;

/** The signal's reason: the caller's own Error (its lease lost, its drain), or the reason made a typed error. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : toArteriaError(`aborted: ${String(reason)}`);
}

const OPTION_KEYS = new Set(['threadsPerAlgorithm', 'startupTimeoutMs', 'youngGenerationMb', 'inferenceModule']);

function intOption(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ArteriaError('CONFIG_INVALID', `AlgorithmRunner option ${name} must be an integer in ${min}..${max}, got ${value}`);
  }
  return value;
}

function compileOptions(options: AlgorithmRunnerOptions): RunnerConfig {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new ArteriaError('CONFIG_INVALID', `AlgorithmRunner has no option ${key}`);
  }
  const { inferenceModule } = options;
  return Object.freeze({
    threadsPerAlgorithm: intOption('threadsPerAlgorithm', options.threadsPerAlgorithm, 1, 1, 64),
    startupTimeoutMs: intOption('startupTimeoutMs', options.startupTimeoutMs, 30_000, 100, 600_000),
    youngGenerationMb: options.youngGenerationMb === undefined ? undefined : intOption('youngGenerationMb', options.youngGenerationMb, 16, 1, 1024),
    inferenceModuleUrl: inferenceModule === undefined ? undefined : new URL(inferenceModule.toString()).href,
  });
}

/**
 * Runs algorithm versions isolated from the platform and from each other: each version
 * gets its own warm worker threads with the memory limit of its manifest, so a timeout,
 * crash or out-of-memory fails one task and never the process. Outputs are validated
 * against the version's outputSchema.
 */
export class AlgorithmRunner implements AsyncDisposable {
  private readonly config: RunnerConfig;
  private readonly pools = new Map<string, VersionPool>();
  private readonly counters: PoolCounters = {
    tasksRun: 0,
    tasksFailed: 0,
    crashes: 0,
    timeouts: 0,
    aborted: 0,
    loadFailures: 0,
    threadsStarted: 0,
    threadsAlive: 0,
  };
  private readonly terminations = new Set<Promise<void>>();
  private nextTaskId = 1;
  private readonly life = new Lifecycle('the algorithm runner');

  constructor(options: AlgorithmRunnerOptions = {}) {
    this.config = compileOptions(options);
    // Registered first, so it runs last: every pool has stopped its threads by then.
    this.life.defer('thread terminations', () => this.terminated());
    this.life.begin();
  }

  /** running until close() is called, then closing and closed. */
  get state(): LifecycleState {
    return this.life.state;
  }

  /**
   * Decodes a run and runs `algorithm` on it in the version's thread. A whole file's
   * buffer is transferred to the thread when the view covers all of it (the caller's view
   * is then empty); otherwise the bytes are copied first. A streamed run (a StreamSource)
   * is decoded and computed while its chunks arrive, and the run settles only once its
   * chunks are read to their end: an error from the source (a checksum that does not
   * match) wins over the algorithm's output, which is never returned for an input that
   * failed its checks.
   */
  async run(algorithm: RegisteredAlgorithm, input: Uint8Array | StreamSource, options: RunOptions = {}): Promise<RunResult> {
    return this.submit(algorithm, input instanceof Uint8Array ? { bytes: input } : { bytes: undefined, stream: input }, options);
  }

  private submit(algorithm: RegisteredAlgorithm, input: Pick<PendingTask, 'bytes' | 'stream'>, options: RunOptions): Promise<RunResult> {
    const { signal } = options;
    this.life.assertRunning('run an algorithm');
    if (signal?.aborted) throw abortError(signal);
    const pool = this.pool(algorithm);
    return new Promise<RunResult>((resolve, reject) => {
      const onAbort = (): void => pool.abort(task, signal ? abortError(signal) : undefined);
      const task: PendingTask = {
        id: this.nextTaskId++,
        ...input,
        requireDeidentified: options.requireDeidentified === true,
        settled: false,
        resolve: (result) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err instanceof Error ? err : toArteriaError(err));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      pool.submit(task);
    });
  }

  /**
   * Runs `algorithm` on a run that arrives as a stream of chunks: the thread decodes and
   * computes while the chunks arrive. Settles only once `source.chunks` is read to its end:
   * an error from the source (a checksum that does not match) wins over the algorithm's
   * output, which is never returned for an input that failed its checks.
   */
  async runStream(algorithm: RegisteredAlgorithm, source: StreamSource, options: RunOptions = {}): Promise<RunResult> {
    return this.submit(algorithm, { bytes: undefined, stream: source }, options);
  }

  /**
   * True when a run of `algorithm` submitted now would start at once on a thread that
   * takes whole runs only: a caller holding a stream may then read the input whole and
   * pass the bytes, saving the thread a gathering copy. False before a thread has loaded.
   */
  wantsWholeInput(algorithm: RegisteredAlgorithm): boolean {
    return this.life.state === 'running' && this.pools.get(poolKey(algorithm))?.wantsWholeInput() === true;
  }

  /** Starts the version's threads ahead of its first task; resolves when they are ready. */
  async warm(algorithm: RegisteredAlgorithm): Promise<void> {
    this.life.assertRunning('warm an algorithm');
    await this.pool(algorithm).warm();
  }

  stats(): RunnerStats {
    let queued = 0;
    for (const pool of this.pools.values()) queued += pool.queued;
    return { ...this.counters, queued };
  }

  /**
   * Rejects waiting and running tasks (INTERNAL, so they are retried elsewhere) and
   * terminates every thread; memoised, every failure reported (CLOSE_FAILED). Running or
   * warming after close is ILLEGAL_STATE.
   */
  close(): Promise<void> {
    return this.life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Waits for every thread termination still pending; one that failed is reported. */
  private async terminated(): Promise<void> {
    const failures: unknown[] = [];
    for (const result of await Promise.allSettled([...this.terminations])) if (result.status === 'rejected') failures.push(result.reason);
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; '));
  }

  private pool(algorithm: RegisteredAlgorithm): VersionPool {
    const key = poolKey(algorithm);
    let pool = this.pools.get(key);
    if (!pool) {
      const env: PoolEnv = {
        threads: this.config.threadsPerAlgorithm,
        startupTimeoutMs: this.config.startupTimeoutMs,
        youngGenerationMb: this.config.youngGenerationMb,
        threadUrl: new URL('./sandbox-thread.js', import.meta.url),
        inferenceModuleUrl: this.config.inferenceModuleUrl,
        counters: this.counters,
        terminations: this.terminations,
      };
      const created = new VersionPool(algorithm, env);
      this.pools.set(key, created);
      const reason = new ArteriaError('INTERNAL', 'the algorithm runner closed before the task finished');
      this.life.defer(`threads of ${algorithm.manifest.name}@${algorithm.manifest.version}`, () => {
        this.pools.delete(key);
        created.close(reason);
      });
      pool = created;
    }
    return pool;
  }
}
