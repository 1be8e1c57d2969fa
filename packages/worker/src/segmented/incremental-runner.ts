import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ArteriaError, Lifecycle, PartialEventV1, isErrorCode, type ErrorCode } from '@arteria/protocol';
import { compileOutputCheck, type OutputCheck } from '../algorithms/output-validator.js';
import type { RegisteredAlgorithm } from '../algorithms/registry.js';
import type { ThreadConfig } from '../algorithms/sandbox-messages.js';
import { isIncrementalReply, type IncrementalReply, type IncrementalRequest } from './incremental-messages.js';

/** Codes a thread may report; anything else becomes ALGORITHM_FAILED. */
const THREAD_CODES = new Set<ErrorCode>(['UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'UNSUPPORTED_DICOM', 'DEIDENTIFICATION_MISSING', 'ALGORITHM_FAILED', 'OUTPUT_INVALID', 'SEGMENT_MISMATCH', 'NOT_INCREMENTAL']);

type Ask = { type: 'open'; header: Uint8Array; requireDeidentified: boolean } | { type: 'segment'; header: Uint8Array; state: Uint8Array; pixels: Uint8Array; firstFrame: number; frameCount: number } | { type: 'finish'; header: Uint8Array; state: Uint8Array; frames: number };

interface Thread {
  worker: Worker;
  ready: Promise<void>;
  pending: Map<number, { resolve: (reply: IncrementalReply) => void; reject: (err: Error) => void }>;
}

/** A copy of the bytes in a buffer of their own, for transfer to a thread. */
const own = (bytes: Uint8Array): ArrayBuffer => bytes.slice().buffer;

/**
 * Runs algorithms' incremental contracts (segmented runs) in threads of their own, one
 * per version, isolated as the one-shot runner's are: the manifest's heap limit, an empty
 * environment, its timeout per step (the thread is terminated: ALGORITHM_TIMEOUT) and a
 * crash failing only that step (ALGORITHM_CRASHED; the next step gets a new thread).
 * Steps of one version run one at a time; outputs are checked against the outputSchema.
 */
export class IncrementalRunner {
  readonly #threads = new Map<string, Thread>();
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #checks = new Map<string, OutputCheck>();
  readonly #inferenceModuleUrl: string | undefined;
  readonly #life = new Lifecycle('the incremental runner');
  #nextId = 1;

  constructor(options: { inferenceModule?: string | URL } = {}) {
    this.#inferenceModuleUrl = options.inferenceModule === undefined ? undefined : new URL(options.inferenceModule.toString()).href;
    this.#life.defer('threads', async () => {
      const threads = [...this.#threads.values()];
      this.#threads.clear();
      await Promise.all(threads.map((t) => t.worker.terminate()));
    });
    this.#life.begin();
  }

  /** A run's first state, from its header (checked: native, grayscale, de-identified when required, the input contract). */
  async open(algorithm: RegisteredAlgorithm, header: Uint8Array, requireDeidentified: boolean): Promise<Uint8Array> {
    const reply = await this.#ask(algorithm, { type: 'open', header, requireDeidentified });
    if (reply.type !== 'stepped') throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to open`);
    return new Uint8Array(reply.state);
  }

  /** Folds one segment's frames into the state: the new state and the events now certain. */
  async segment(algorithm: RegisteredAlgorithm, step: { header: Uint8Array; state: Uint8Array; pixels: Uint8Array; firstFrame: number; frameCount: number }): Promise<{ state: Uint8Array; events: PartialEventV1[] }> {
    const reply = await this.#ask(algorithm, { type: 'segment', ...step });
    if (reply.type !== 'stepped') throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to a segment`);
    let events: PartialEventV1[];
    try {
      events = PartialEventV1.array().max(64).parse(JSON.parse(reply.eventsJson));
    } catch (err) {
      throw new ArteriaError('OUTPUT_INVALID', `the algorithm's partial events are not { key, type, frame, ... } objects (at most 64 per segment): ${(err as Error).message}`, { cause: err });
    }
    return { state: new Uint8Array(reply.state), events };
  }

  /** The run's output from its final state, valid against the version's outputSchema. */
  async finish(algorithm: RegisteredAlgorithm, step: { header: Uint8Array; state: Uint8Array; frames: number }): Promise<unknown> {
    const reply = await this.#ask(algorithm, { type: 'finish', ...step });
    if (reply.type !== 'finished') throw new ArteriaError('INTERNAL', `incremental thread answered ${reply.type} to finish`);
    const output: unknown = JSON.parse(reply.outputJson);
    this.#check(algorithm)(output);
    return output;
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
    await thread.ready;
    const id = this.#nextId++;
    const request: IncrementalRequest =
      ask.type === 'open'
        ? { type: 'open', id, header: own(ask.header), requireDeidentified: ask.requireDeidentified }
        : ask.type === 'segment'
          ? { type: 'segment', id, header: own(ask.header), state: own(ask.state), pixels: own(ask.pixels), firstFrame: ask.firstFrame, frameCount: ask.frameCount }
          : { type: 'finish', id, header: own(ask.header), state: own(ask.state), frames: ask.frames };
    const transfer = request.type === 'open' ? [request.header] : request.type === 'segment' ? [request.header, request.state, request.pixels] : [request.header, request.state];
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
          if (reply.type === 'failed') reject(new ArteriaError(isErrorCode(reply.code) && THREAD_CODES.has(reply.code) ? reply.code : 'ALGORITHM_FAILED', reply.message));
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
    const config: ThreadConfig = {
      entryUrl: pathToFileURL(entryPath).href,
      input: manifest.input,
      inferenceModuleUrl: this.#inferenceModuleUrl,
      model: ref.model && modelPath ? { name: ref.model.name, digest: ref.model.digest, path: modelPath, gpu: manifest.resources.gpu } : undefined,
    };
    const memoryMb = manifest.resources.memoryMb;
    const worker = new Worker(new URL('./incremental-thread.js', import.meta.url), {
      workerData: config,
      name: `incremental ${manifest.name}@${manifest.version}`,
      // The platform's environment (storage credentials, tenant secrets) is not the algorithm's.
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(4, Math.round(memoryMb / 8))) },
    });
    const pending: Thread['pending'] = new Map();
    let started!: () => void;
    let failedToStart!: (err: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failedToStart = reject;
    });
    const thread: Thread = { worker, ready, pending };
    const die = (err: Error): void => {
      this.#forget(key(algorithm), thread);
      failedToStart(err);
      for (const waiter of pending.values()) waiter.reject(err);
      pending.clear();
    };
    worker.on('message', (message: unknown) => {
      if (!isIncrementalReply(message)) return die(new ArteriaError('ALGORITHM_CRASHED', 'the incremental thread sent a message the platform does not know'));
      if (message.type === 'ready') return started();
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
