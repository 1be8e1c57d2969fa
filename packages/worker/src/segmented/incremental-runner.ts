import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ArteriaError, Lifecycle, PartialEventV1, isErrorCode, type ErrorCode } from '@arteria/protocol';
import { compileOutputCheck, type OutputCheck } from '../algorithms/output-validator.js';
import type { RegisteredAlgorithm } from '../algorithms/registry.js';
import { STATE_NOT_LIVE, isIncrementalReply, type IncrementalReply, type IncrementalRequest, type IncrementalThreadConfig, type LiveReport, type LiveStateBudget, type StateSource } from './incremental-messages.js';

export type { LiveStateBudget } from './incremental-messages.js';

/** Codes a thread may report; anything else becomes ALGORITHM_FAILED. */
const THREAD_CODES = new Set<ErrorCode>(['UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'UNSUPPORTED_DICOM', 'DEIDENTIFICATION_MISSING', 'ALGORITHM_FAILED', 'OUTPUT_INVALID', 'SEGMENT_MISMATCH', 'NOT_INCREMENTAL']);

/** A run's state kept live in its version's thread after a step of this runner: the run, and the generation that names this state only. */
export interface LiveStateRef {
  readonly run: string;
  readonly gen: number;
}

/** A run's state as a step names it: its checkpoint bytes, or the live state a previous step left in the thread. */
export type IncrementalState = { bytes: Uint8Array } | { live: LiveStateRef };

/**
 * One segment to fold into a run's state. `handOver`: the pixels are the caller's to give;
 * their buffer goes to the thread without a copy when they span all of it, and the caller's
 * view is detached from then on (a step tried again needs its pixels again).
 */
export interface SegmentFold {
  from: IncrementalState;
  encode: boolean;
  header: Uint8Array;
  pixels: Uint8Array;
  handOver?: boolean;
  firstFrame: number;
  frameCount: number;
}

/** What a fold gives back. */
export interface SegmentFolded {
  live: LiveStateRef | undefined;
  state: Uint8Array | undefined;
  events: PartialEventV1[];
  /**
   * The pixels' buffer, given back after the fold by an algorithm that only borrows its
   * frames (its contents are not the segment's any more): memory to read a later segment into.
   */
  pixels?: ArrayBuffer;
}

/**
 * A step named a live state the thread no longer holds (evicted, dropped, the thread
 * replaced after a crash or timeout): the caller starts again from the checkpoint.
 * Retryable (INTERNAL) should it ever reach a task.
 */
export class LiveStateLost extends ArteriaError {
  constructor(message: string) {
    super('INTERNAL', message);
    this.name = 'LiveStateLost';
  }
}

/** Defaults of LiveStateBudget, per thread (a thread also keeps no more than half its manifest's memoryMb). */
export const DEFAULT_LIVE_STATE_BUDGET: LiveStateBudget = { maxBytes: 256 * 2 ** 20, maxRuns: 16, idleMs: 60_000 };

export interface IncrementalRunnerOptions {
  inferenceModule?: string | URL;
  /** How much state the threads keep live between steps (0 bytes: every step goes through checkpoint bytes, as before). */
  liveStates?: Partial<LiveStateBudget>;
}

/** What the runner's threads did, for tests and benchmarks. */
export interface IncrementalRunnerStats {
  /** Steps that restored a state from checkpoint bytes. */
  decodes: number;
  /** Checkpoints encoded (open, asked, or a state over the budget). */
  encodes: number;
  /** Live states and their estimated bytes, over every thread, as of each thread's last answer. */
  liveRuns: number;
  liveBytes: number;
}

type Ask =
  | { type: 'open'; run: string; gen: number; header: Uint8Array; requireDeidentified: boolean }
  | ({ type: 'segment'; run: string; gen: number } & SegmentFold)
  | { type: 'encode'; run: string; gen: number }
  | { type: 'finish'; run: string; from: IncrementalState; header: Uint8Array; frames: number };

interface Thread {
  worker: Worker;
  /** Resolves once the algorithm is loaded: with whether its version has an incremental contract. */
  ready: Promise<boolean>;
  pending: Map<number, { resolve: (reply: IncrementalReply) => void; reject: (err: Error) => void }>;
  live: LiveReport;
  /** A step was sent (or is about to be): the thread answers it, so warm() leaves it running. */
  used: boolean;
}

/**
 * A copy of the bytes in a buffer of their own, for transfer to a thread. Uint8Array's own
 * slice: a Buffer's slice is a view, and transferring its buffer would detach the caller's
 * bytes (and, for a small Buffer, Node's shared pool under other Buffers).
 */
const own = (bytes: Uint8Array): ArrayBuffer => Uint8Array.prototype.slice.call(bytes).buffer;

/**
 * Bytes the caller hands over: their buffer itself when they span all of it (a segment as
 * an input source reads it), leaving the caller's view detached; a copy otherwise. A
 * segment's 16 MiB copied into fresh memory cost about 40 ms of CPU on the platform's
 * thread (its page faults, more than the copy), more than reading and hashing it.
 */
const given = (bytes: Uint8Array): ArrayBuffer =>
  bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.byteLength > 0 ? bytes.buffer : own(bytes);

const sourceOf = (state: IncrementalState): StateSource => ('bytes' in state ? { bytes: own(state.bytes) } : { gen: state.live.gen });

/**
 * Runs algorithms' incremental contracts (segmented runs) in threads of their own, one
 * per version, isolated as the one-shot runner's are: the manifest's heap limit, an empty
 * environment, its timeout per step (the thread is terminated: ALGORITHM_TIMEOUT) and a
 * crash failing only that step (ALGORITHM_CRASHED; the next step gets a new thread).
 * Steps of one version run one at a time; outputs are checked against the outputSchema.
 *
 * A step leaves the run's state live in the thread (within LiveStateBudget) and answers
 * with a LiveStateRef; the next step of the run names it instead of carrying checkpoint
 * bytes, so a step costs its own frames, not the run's so far. `checkpoint` encodes a live
 * state when it is to be written. A ref the thread no longer holds fails with LiveStateLost.
 */
export class IncrementalRunner {
  readonly #threads = new Map<string, Thread>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #checks = new Map<string, OutputCheck>();
  readonly #inferenceModuleUrl: string | undefined;
  readonly #budget: LiveStateBudget;
  readonly #life = new Lifecycle('the incremental runner');
  #nextId = 1;
  /** Generations of live states: unique across this runner's threads, old and new. */
  #nextGen = 1;
  #decodes = 0;
  #encodes = 0;

  constructor(options: IncrementalRunnerOptions = {}) {
    this.#inferenceModuleUrl = options.inferenceModule === undefined ? undefined : new URL(options.inferenceModule.toString()).href;
    this.#budget = { ...DEFAULT_LIVE_STATE_BUDGET, ...options.liveStates };
    this.#life.defer('threads', async () => {
      const threads = [...this.#threads.values()];
      this.#threads.clear();
      await Promise.all(threads.map((t) => t.worker.terminate()));
    });
    this.#life.begin();
  }

  /** A run's first state, from its header (checked: native, grayscale, de-identified when required, the input contract): its checkpoint, and the live state when kept. */
  async open(algorithm: RegisteredAlgorithm, run: string, header: Uint8Array, requireDeidentified: boolean): Promise<{ state: Uint8Array; live: LiveStateRef | undefined }> {
    const gen = this.#nextGen++;
    const reply = await this.#ask(algorithm, { type: 'open', run, gen, header, requireDeidentified });
    if (reply.type !== 'stepped' || reply.state === undefined) throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to open`);
    return { state: new Uint8Array(reply.state), live: reply.kept ? { run, gen } : undefined };
  }

  /**
   * Folds one segment's frames into the run's state: the events now certain, the new state
   * live (when the thread keeps it) and its checkpoint bytes (when `encode`, or when not kept).
   */
  async segment(algorithm: RegisteredAlgorithm, run: string, step: SegmentFold): Promise<SegmentFolded> {
    const gen = this.#nextGen++;
    const reply = await this.#ask(algorithm, { type: 'segment', run, gen, ...step });
    if (reply.type !== 'stepped') throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to a segment`);
    let events: PartialEventV1[];
    try {
      events = PartialEventV1.array().max(64).parse(JSON.parse(reply.eventsJson));
    } catch (err) {
      // The state was folded: it stays in the thread under its gen until dropped or evicted.
      throw new ArteriaError('OUTPUT_INVALID', `the algorithm's partial events are not { key, type, frame, ... } objects (at most 64 per segment): ${(err as Error).message}`, { cause: err });
    }
    return { live: reply.kept ? { run, gen } : undefined, state: reply.state === undefined ? undefined : new Uint8Array(reply.state), events, ...(reply.pixels === undefined ? {} : { pixels: reply.pixels }) };
  }

  /** The checkpoint bytes of a live state (LiveStateLost when the thread no longer holds it). */
  async checkpoint(algorithm: RegisteredAlgorithm, live: LiveStateRef): Promise<Uint8Array> {
    const reply = await this.#ask(algorithm, { type: 'encode', run: live.run, gen: live.gen });
    if (reply.type !== 'encoded') throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to encode`);
    return new Uint8Array(reply.state);
  }

  /** The run's output from its final state, valid against the version's outputSchema; the thread forgets the run. */
  async finish(algorithm: RegisteredAlgorithm, run: string, step: { from: IncrementalState; header: Uint8Array; frames: number }): Promise<unknown> {
    const reply = await this.#ask(algorithm, { type: 'finish', run, ...step });
    if (reply.type !== 'finished') throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to finish`);
    const output: unknown = JSON.parse(reply.outputJson);
    this.#check(algorithm)(output);
    return output;
  }

  /** Forgets a run's live state (its run ended, failed, or its lease was lost); nothing when its thread is not running. */
  release(algorithm: RegisteredAlgorithm, run: string): void {
    const thread = this.#threads.get(key(algorithm));
    if (thread === undefined) return;
    const drop: IncrementalRequest = { type: 'drop', run };
    void thread.ready.then(
      () => thread.worker.postMessage(drop),
      () => undefined, // a thread that did not start holds no state; its failure reached the step that started it
    );
  }

  /**
   * Starts the version's thread now (loading its module and model), so the first segmented
   * run after a start or an install does not wait for it: with large whole files sent in
   * segments by default, that run is the common case, not the exception. A version without
   * an incremental contract has its thread stopped again (a run of it started later gets a
   * thread that answers NOT_INCREMENTAL, as before). Rejects when the thread cannot start.
   */
  async warm(algorithm: RegisteredAlgorithm): Promise<void> {
    this.#life.assertRunning('warm an incremental thread');
    const thread = this.#thread(algorithm);
    if (!(await thread.ready) && !thread.used) this.#forget(key(algorithm), thread);
  }

  /** Whether a thread of the version is running (for tests and operators). */
  hasThread(algorithm: RegisteredAlgorithm): boolean {
    return this.#threads.has(key(algorithm));
  }

  stats(): IncrementalRunnerStats {
    const threads = [...this.#threads.values()];
    return { decodes: this.#decodes, encodes: this.#encodes, liveRuns: threads.reduce((n, t) => n + t.live.runs, 0), liveBytes: threads.reduce((n, t) => n + t.live.bytes, 0) };
  }

  close(): Promise<void> {
    return this.#life.close();
  }

  #check(algorithm: RegisteredAlgorithm): OutputCheck {
    let check = this.#checks.get(algorithm.digest);
    if (check === undefined) {
      check = compileOutputCheck(algorithm);
      this.#checks.set(algorithm.digest, check);
    }
    return check;
  }

  /** One step at a time per version, in the order asked. */
  #ask(algorithm: RegisteredAlgorithm, ask: Ask): Promise<IncrementalReply> {
    this.#life.assertRunning('run an incremental step');
    const key = algorithm.digest;
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.#send(algorithm, ask));
    this.#queues.set(key, next);
    return next;
  }

  async #send(algorithm: RegisteredAlgorithm, ask: Ask): Promise<IncrementalReply> {
    const thread = this.#thread(algorithm);
    thread.used = true;
    await thread.ready;
    const id = this.#nextId++;
    let request: IncrementalRequest;
    switch (ask.type) {
      case 'open':
        request = { type: 'open', id, run: ask.run, gen: ask.gen, header: own(ask.header), requireDeidentified: ask.requireDeidentified };
        break;
      case 'segment':
        request = { type: 'segment', id, run: ask.run, gen: ask.gen, from: sourceOf(ask.from), encode: ask.encode, header: own(ask.header), pixels: ask.handOver === true ? given(ask.pixels) : own(ask.pixels), firstFrame: ask.firstFrame, frameCount: ask.frameCount };
        break;
      case 'encode':
        request = { type: 'encode', id, run: ask.run, gen: ask.gen };
        break;
      case 'finish':
        request = { type: 'finish', id, run: ask.run, from: sourceOf(ask.from), header: own(ask.header), frames: ask.frames };
        break;
    }
    const transfer: ArrayBuffer[] = [];
    if ('header' in request) transfer.push(request.header);
    if ('pixels' in request) transfer.push(request.pixels);
    if ('from' in request && 'bytes' in request.from) transfer.push(request.from.bytes);
    const timeoutMs = algorithm.manifest.resources.timeoutMs;
    return await new Promise<IncrementalReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        thread.pending.delete(id);
        this.#forget(key(algorithm), thread);
        reject(new ArteriaError('ALGORITHM_TIMEOUT', `${algorithm.manifest.name}@${algorithm.manifest.version} took longer than ${timeoutMs} ms for one step of a segmented run`));
      }, timeoutMs);
      thread.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.type === 'stepped' || reply.type === 'finished') thread.live = reply.live;
          if (reply.type === 'stepped' && reply.decoded) this.#decodes++;
          if (reply.type === 'finished' && reply.decoded) this.#decodes++;
          if ((reply.type === 'stepped' && reply.state !== undefined) || reply.type === 'encoded') this.#encodes++;
          if (reply.type === 'failed' && reply.code === STATE_NOT_LIVE) reject(new LiveStateLost(reply.message));
          else if (reply.type === 'failed') reject(new ArteriaError(isErrorCode(reply.code) && THREAD_CODES.has(reply.code) ? reply.code : 'ALGORITHM_FAILED', reply.message));
          else resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      thread.worker.postMessage(request, transfer);
    });
  }

  #thread(algorithm: RegisteredAlgorithm): Thread {
    const existing = this.#threads.get(key(algorithm));
    if (existing !== undefined) return existing;
    const { manifest, entryPath, modelPath, ref } = algorithm;
    const memoryMb = manifest.resources.memoryMb;
    const config: IncrementalThreadConfig = {
      entryUrl: pathToFileURL(entryPath).href,
      input: manifest.input,
      inferenceModuleUrl: this.#inferenceModuleUrl,
      model: ref.model && modelPath ? { name: ref.model.name, digest: ref.model.digest, path: modelPath, gpu: manifest.resources.gpu } : undefined,
      live: { ...this.#budget, maxBytes: Math.min(this.#budget.maxBytes, (memoryMb * 2 ** 20) / 2) },
    };
    const worker = new Worker(new URL('./incremental-thread.js', import.meta.url), {
      workerData: config,
      name: `incremental ${manifest.name}@${manifest.version}`,
      // The platform's environment (storage credentials, tenant secrets) is not the algorithm's.
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(4, Math.round(memoryMb / 8))) },
    });
    const pending: Thread['pending'] = new Map();
    let started!: (incremental: boolean) => void;
    let failedToStart!: (err: Error) => void;
    const ready = new Promise<boolean>((resolve, reject) => {
      started = resolve;
      failedToStart = reject;
    });
    const thread: Thread = { worker, ready, pending, live: { runs: 0, bytes: 0 }, used: false };
    const die = (err: Error): void => {
      this.#forget(key(algorithm), thread);
      failedToStart(err);
      for (const waiter of pending.values()) waiter.reject(err);
      pending.clear();
    };
    worker.on('message', (message: unknown) => {
      if (!isIncrementalReply(message)) return die(new ArteriaError('ALGORITHM_CRASHED', 'the incremental thread sent a message the platform does not know'));
      if (message.type === 'ready') return started(message.incremental !== false);
      if (message.type === 'load-failed') return die(new ArteriaError('ALGORITHM_CRASHED', `the algorithm could not be loaded: ${message.message}`));
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      waiter?.resolve(message);
    });
    worker.on('error', (err) => die(new ArteriaError('ALGORITHM_CRASHED', `the algorithm's incremental thread died: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => die(new ArteriaError('ALGORITHM_CRASHED', `the algorithm's incremental thread exited (${code})`)));
    this.#threads.set(key(algorithm), thread);
    return thread;
  }

  #forget(threadKey: string, thread: Thread): void {
    if (this.#threads.get(threadKey) === thread) this.#threads.delete(threadKey);
    void thread.worker.terminate();
  }
}

const key = (algorithm: RegisteredAlgorithm): string => `${algorithm.digest}\0${algorithm.dir}`;
