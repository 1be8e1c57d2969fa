import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ArteriaError, isErrorCode, type ErrorCode } from '@arteria/protocol';
import { compileOutputCheck, type OutputCheck } from './output-validator.js';
import type { RegisteredAlgorithm } from './registry.js';
import { StreamFeed, ownedBuffer, type StreamSource } from './sandbox-feed.js';
import { isThreadMessage, type TaskMessage, type ThreadConfig, type ThreadMessage } from './sandbox-messages.js';

export interface RunResult {
  /** The algorithm's output, parsed from JSON and valid against its outputSchema. */
  output: unknown;
  computeMs: number;
  decodeMs: number;
  /** The thread's V8 heap (MB) after the run, against the manifest's memoryMb. */
  heapMb: number;
}

/** One call of AlgorithmRunner.run, from submit until it settles. */
export interface PendingTask {
  readonly id: number;
  /** Dropped once handed to a thread. */
  bytes: Uint8Array | undefined;
  /** A streamed input instead of bytes; dropped once its feed starts. */
  stream?: StreamSource | undefined;
  /** Refuse an input that does not declare de-identification (DEIDENTIFICATION_MISSING). */
  readonly requireDeidentified: boolean;
  /** Feeds a streamed input to the thread; the task settles only once the source is read to its end. */
  feed?: StreamFeed;
  sourceDone?: boolean;
  /** The thread's answer, held until the source has passed its checks. */
  held?: { result: RunResult } | { error: unknown };
  settled: boolean;
  readonly resolve: (result: RunResult) => void;
  readonly reject: (err: unknown) => void;
}

/** Counters shared by every pool of one runner. */
export interface PoolCounters {
  tasksRun: number;
  tasksFailed: number;
  crashes: number;
  timeouts: number;
  aborted: number;
  loadFailures: number;
  threadsStarted: number;
  threadsAlive: number;
}

export interface PoolEnv {
  readonly threads: number;
  readonly startupTimeoutMs: number;
  readonly youngGenerationMb: number | undefined;
  readonly threadUrl: URL;
  readonly inferenceModuleUrl: string | undefined;
  readonly counters: PoolCounters;
  /** Pending thread terminations, awaited by close(). */
  readonly terminations: Set<Promise<void>>;
}

/** Codes a thread may report; anything else becomes ALGORITHM_FAILED. */
const THREAD_CODES = new Set<ErrorCode>(['UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'UNSUPPORTED_DICOM', 'INPUT_TOO_LARGE', 'DEIDENTIFICATION_MISSING', 'ALGORITHM_FAILED', 'OUTPUT_INVALID']);

interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  /** The thread said its algorithm takes whole runs only (no runStream). */
  wholeRuns: boolean;
  task: PendingTask | undefined;
  timer: NodeJS.Timeout | undefined;
  waiters: ((err?: Error) => void)[];
}

function settle(task: PendingTask, outcome: { result: RunResult } | { error: unknown }): void {
  if (task.settled) return;
  task.settled = true;
  task.bytes = undefined;
  task.stream = undefined;
  task.feed?.stop();
  if ('result' in outcome) task.resolve(outcome.result);
  else task.reject(outcome.error);
}

/**
 * The warm threads of one algorithm version and the tasks waiting for them. A thread
 * runs one task at a time; a thread that times out, crashes or is aborted mid-task is
 * terminated and replaced on demand.
 */
export class VersionPool {
  private readonly queue: PendingTask[] = [];
  private readonly slots: Slot[];
  private readonly check: OutputCheck;
  private readonly label: string;
  private closed = false;

  constructor(
    private readonly algorithm: RegisteredAlgorithm,
    private readonly env: PoolEnv,
  ) {
    this.check = compileOutputCheck(algorithm);
    this.label = `${algorithm.manifest.name}@${algorithm.manifest.version}`;
    this.slots = Array.from({ length: env.threads }, () => ({ worker: undefined, ready: false, wholeRuns: false, task: undefined, timer: undefined, waiters: [] }));
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * A task submitted now would start at once on a thread whose algorithm takes whole runs:
   * its input may as well be read whole, since the thread would gather a stream into one
   * buffer anyway. False while no thread has loaded, or when the task would wait.
   */
  wantsWholeInput(): boolean {
    return !this.closed && this.queue.length === 0 && this.slots.some((s) => s.worker !== undefined && s.ready && s.wholeRuns && s.task === undefined);
  }

  submit(task: PendingTask): void {
    this.queue.push(task);
    this.pump();
  }

  /** Starts every thread not yet running; resolves when all are ready. */
  warm(): Promise<void> {
    const waits = this.slots.map(
      (slot) =>
        new Promise<void>((resolve, reject) => {
          if (slot.worker && slot.ready) return resolve();
          slot.waiters.push((err) => (err ? reject(err) : resolve()));
          if (!slot.worker) this.start(slot);
        }),
    );
    return Promise.all(waits).then(() => undefined);
  }

  /** Rejects the task at once; a thread running it is terminated. */
  abort(task: PendingTask, reason: unknown): void {
    if (task.settled) return;
    this.env.counters.aborted++;
    const queued = this.queue.indexOf(task);
    if (queued >= 0) this.queue.splice(queued, 1);
    const slot = this.slots.find((s) => s.task === task);
    if (slot && slot.ready) {
      this.kill(slot);
    } else if (slot) {
      // Still starting: the thread stays and takes the next task.
      slot.task = undefined;
    }
    settle(task, { error: reason });
    this.pump();
  }

  close(reason: ArteriaError): void {
    this.closed = true;
    for (const task of this.queue.splice(0)) settle(task, { error: reason });
    for (const slot of this.slots) {
      const task = slot.task;
      if (slot.worker) this.kill(slot, reason);
      if (task) settle(task, { error: reason });
    }
  }

  private pump(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      const slot =
        this.slots.find((s) => s.worker && s.ready && !s.task) ??
        this.slots.find((s) => s.worker && !s.task) ??
        this.slots.find((s) => !s.worker);
      if (!slot) return;
      const task = this.queue.shift() as PendingTask;
      slot.task = task;
      if (!slot.worker) this.start(slot);
      else if (slot.ready) this.send(slot);
    }
  }

  private start(slot: Slot): void {
    const { manifest, entryPath, modelPath, ref } = this.algorithm;
    const config: ThreadConfig = {
      entryUrl: pathToFileURL(entryPath).href,
      input: manifest.input,
      inferenceModuleUrl: this.env.inferenceModuleUrl,
      model: ref.model && modelPath ? { name: ref.model.name, digest: ref.model.digest, path: modelPath, gpu: manifest.resources.gpu } : undefined,
    };
    const memoryMb = manifest.resources.memoryMb;
    const worker = new Worker(this.env.threadUrl, {
      workerData: config,
      name: this.label,
      // The platform's environment (storage credentials, tenant secrets) is not the algorithm's.
      env: {},
      resourceLimits: {
        maxOldGenerationSizeMb: memoryMb,
        // A young generation far smaller than the old one: enough for allocation-heavy loops.
        maxYoungGenerationSizeMb: this.env.youngGenerationMb ?? Math.min(64, Math.max(4, Math.round(memoryMb / 8))),
      },
    });
    slot.worker = worker;
    slot.ready = false;
    slot.wholeRuns = false;
    this.env.counters.threadsStarted++;
    this.env.counters.threadsAlive++;
    worker.on('message', (message: unknown) => this.onMessage(slot, worker, message));
    worker.on('error', (err) => this.onDeath(slot, worker, err));
    worker.on('messageerror', (err) => this.onDeath(slot, worker, err));
    worker.on('exit', (code) => this.onDeath(slot, worker, undefined, code));
    slot.timer = setTimeout(() => this.onStartupTimeout(slot, worker), this.env.startupTimeoutMs);
  }

  private send(slot: Slot): void {
    const task = slot.task;
    const worker = slot.worker;
    if (task?.stream !== undefined && worker) {
      this.sendStream(slot, worker, task, task.stream);
      return;
    }
    if (!task || !worker || task.bytes === undefined) return;
    const buffer = ownedBuffer(task.bytes);
    task.bytes = undefined;
    const message: TaskMessage = { type: 'task', id: task.id, bytes: buffer, requireDeidentified: task.requireDeidentified };
    try {
      worker.postMessage(message, [buffer]);
    } catch {
      // Some buffers cannot be transferred (for example marked untransferable): copy instead.
      worker.postMessage({ ...message, bytes: new Uint8Array(buffer).buffer } satisfies TaskMessage);
    }
    const { timeoutMs } = this.algorithm.manifest.resources;
    slot.timer = setTimeout(() => this.onTimeout(slot, task), timeoutMs);
  }

  /**
   * Starts feeding a streamed input. The timeout runs while the thread holds up the feed
   * (its window is full) and after the last chunk, not while the store is being read.
   */
  private sendStream(slot: Slot, worker: Worker, task: PendingTask, source: StreamSource): void {
    task.stream = undefined;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    const { timeoutMs } = this.algorithm.manifest.resources;
    const arm = (): void => {
      if (slot.task === task && slot.timer === undefined) slot.timer = setTimeout(() => this.onTimeout(slot, task), timeoutMs);
    };
    const disarm = (): void => {
      if (slot.task !== task) return;
      clearTimeout(slot.timer);
      slot.timer = undefined;
    };
    const feed = new StreamFeed(source, {
      post: (message, transfer) => worker.postMessage(message, transfer),
      waiting: (on) => (on ? arm() : disarm()),
      ended: () => {
        disarm();
        arm();
      },
    });
    task.feed = feed;
    feed.run(task.id, task.requireDeidentified).then(
      () => {
        task.sourceDone = true;
        if (task.held !== undefined) this.finish(task, task.held);
      },
      (err: unknown) => {
        // An input that is not what was declared says nothing about the algorithm: its error wins.
        feed.abandon(task.id);
        arm();
        this.finish(task, { error: err });
      },
    );
  }

  private onMessage(slot: Slot, worker: Worker, raw: unknown): void {
    if (slot.worker !== worker) return;
    if (!isThreadMessage(raw)) {
      this.onDeath(slot, worker, new Error('the thread sent a message outside the sandbox protocol'));
      return;
    }
    this.handle(slot, raw);
  }

  private handle(slot: Slot, message: ThreadMessage): void {
    switch (message.type) {
      case 'ready': {
        clearTimeout(slot.timer);
        slot.ready = true;
        slot.wholeRuns = message.wholeRuns === true;
        for (const wake of slot.waiters.splice(0)) wake();
        if (slot.task) this.send(slot);
        else this.pump();
        return;
      }
      case 'load-failed': {
        this.env.counters.loadFailures++;
        const error = new ArteriaError('ALGORITHM_FAILED', `${this.label} could not be loaded: ${message.message}`);
        const task = slot.task;
        this.kill(slot, error);
        if (task) this.finish(task, { error });
        this.pump();
        return;
      }
      case 'done':
      case 'failed': {
        const task = slot.task;
        if (!task || task.id !== message.id) return;
        clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.task = undefined;
        const outcome = this.outcome(message);
        if (task.feed !== undefined && task.sourceDone !== true) {
          // The thread is free for the next task; this one waits for its input's checks.
          task.held = outcome;
          task.feed.detach();
        } else {
          this.finish(task, outcome);
        }
        this.pump();
        return;
      }
      case 'credit': {
        if (slot.task?.id === message.id) slot.task.feed?.credit(message.bytes);
        return;
      }
    }
  }

  private outcome(message: Extract<ThreadMessage, { type: 'done' | 'failed' }>): { result: RunResult } | { error: unknown } {
    if (message.type === 'failed') {
      const code = isErrorCode(message.code) && THREAD_CODES.has(message.code) ? message.code : 'ALGORITHM_FAILED';
      const prefix = code === 'ALGORITHM_FAILED' ? `${this.label} failed: ` : '';
      return { error: new ArteriaError(code, `${prefix}${message.message}`) };
    }
    try {
      const output = JSON.parse(message.outputJson) as unknown;
      this.check(output);
      return { result: { output, computeMs: message.computeMs, decodeMs: message.decodeMs, heapMb: message.heapMb } };
    } catch (err) {
      return { error: err instanceof ArteriaError ? err : new ArteriaError('OUTPUT_INVALID', `${this.label} output: ${(err as Error).message}`, { cause: err }) };
    }
  }

  private finish(task: PendingTask, outcome: { result: RunResult } | { error: unknown }): void {
    if (task.settled) return;
    this.env.counters.tasksRun++;
    if ('error' in outcome) this.env.counters.tasksFailed++;
    settle(task, outcome);
  }

  private onTimeout(slot: Slot, task: PendingTask): void {
    if (slot.task !== task) return;
    this.env.counters.timeouts++;
    this.kill(slot);
    const { timeoutMs } = this.algorithm.manifest.resources;
    this.finish(task, { error: new ArteriaError('ALGORITHM_TIMEOUT', `${this.label} ran longer than its ${timeoutMs} ms timeout and was stopped`) });
    this.pump();
  }

  private onStartupTimeout(slot: Slot, worker: Worker): void {
    if (slot.worker !== worker || slot.ready) return;
    this.env.counters.timeouts++;
    const error = new ArteriaError('ALGORITHM_TIMEOUT', `${this.label} did not load within ${this.env.startupTimeoutMs} ms`);
    const task = slot.task;
    this.kill(slot, error);
    if (task) this.finish(task, { error });
    this.pump();
  }

  /** The thread died on its own: uncaught error, out of memory, process.exit. */
  private onDeath(slot: Slot, worker: Worker, err: Error | undefined, exitCode?: number): void {
    if (slot.worker !== worker) return;
    this.env.counters.crashes++;
    const why =
      (err as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? `ran out of memory (limit ${this.algorithm.manifest.resources.memoryMb} MB)`
        : err
          ? `thread died: ${err.message}`
          : `thread exited with code ${exitCode ?? 'unknown'}`;
    const error = new ArteriaError('ALGORITHM_CRASHED', `${this.label} ${why}`, { cause: err });
    const task = slot.task;
    this.kill(slot, error);
    if (task) this.finish(task, { error });
    this.pump();
  }

  /** Forgets the slot's thread and terminates it (a no-op for a thread already gone). */
  private kill(slot: Slot, reason?: Error): void {
    const worker = slot.worker;
    clearTimeout(slot.timer);
    slot.worker = undefined;
    slot.ready = false;
    slot.task = undefined;
    slot.timer = undefined;
    for (const wake of slot.waiters.splice(0)) wake(reason ?? new ArteriaError('INTERNAL', `${this.label} thread stopped while starting`));
    if (!worker) return;
    this.env.counters.threadsAlive--;
    const done = worker.terminate().then(() => undefined);
    const forget = (): void => void this.env.terminations.delete(done);
    this.env.terminations.add(done);
    // close() awaits (and reports) the termination; this chain only tidies the set.
    void done.then(forget, forget);
  }
}
