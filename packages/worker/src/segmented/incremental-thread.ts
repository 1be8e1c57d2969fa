/**
 * Entry of an algorithm's incremental thread (segmented runs): imports the algorithm once,
 * then per step reads the run's header, takes the run's state (kept live from its previous
 * step here, or restored from checkpoint bytes), feeds the segment's frames (or finishes)
 * and answers with the events (or the output); the state stays here, live, and is encoded
 * only when the host asks for its checkpoint. Live states are bounded (LiveStateBudget:
 * least recently used first out, idle ones dropped) and a state is out of the table while a
 * step works on it, so a step that fails leaves none behind half-changed. Isolated like the
 * one-shot threads: own heap limit, empty environment; the host owns timeouts and
 * terminates this thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { readSegmentedHeader, segmentFrames, type SegmentedRunHeader } from '@arteria/dicom';
import { decodeState, encodeState, type Algorithm, type AlgorithmContext, type InferenceBackend, type IncrementalAlgorithm } from '@arteria/sdk';
import { deidentificationProblem, inputContractProblem } from '../algorithms/input-contract.js';
import type { ThreadConfig } from '../algorithms/sandbox-messages.js';
import { STATE_NOT_LIVE, type IncrementalReply, type IncrementalRequest, type IncrementalThreadConfig, type LiveReport, type LiveStateBudget, type StateSource } from './incremental-messages.js';

const HEADER_CODES = new Set(['UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'UNSUPPORTED_DICOM']);
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const codeOf = (err: unknown): string | undefined => (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined);

class StepFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function load(config: ThreadConfig): Promise<{ algorithm: Algorithm; inference: InferenceBackend | undefined }> {
  const module = (await import(config.entryUrl)) as { default?: unknown };
  const algorithm = module.default as Algorithm | undefined;
  if (typeof algorithm !== 'object' || typeof algorithm.run !== 'function') throw new Error('the entry module has no default export with a run() function');
  let inference: InferenceBackend | undefined;
  if (config.inferenceModuleUrl !== undefined && config.model !== undefined) {
    const backendModule = (await import(config.inferenceModuleUrl)) as { default?: unknown };
    if (typeof backendModule.default !== 'function') throw new Error(`${config.inferenceModuleUrl} has no default export function`);
    const create = backendModule.default as (model: ThreadConfig['model']) => Promise<InferenceBackend> | InferenceBackend;
    inference = await create(config.model);
    await inference.load(config.model);
  }
  return { algorithm, inference };
}

function headerOf(bytes: ArrayBuffer): SegmentedRunHeader {
  try {
    return readSegmentedHeader(new Uint8Array(bytes));
  } catch (err) {
    const code = codeOf(err);
    throw new StepFailure(code !== undefined && HEADER_CODES.has(code) ? code : 'INVALID_DICOM', messageOf(err));
  }
}

interface LiveState {
  gen: number;
  state: unknown;
  bytes: number;
  usedAt: number;
}

/**
 * The runs' states kept between steps, least recently used first (a Map keeps insertion
 * order; a use moves the run to the end).
 */
class LiveStates {
  readonly #states = new Map<string, LiveState>();
  readonly #budget: LiveStateBudget;
  #bytes = 0;
  /** Runs a step is working on now, and those of them dropped meanwhile (their step keeps nothing). */
  readonly #working = new Set<string>();
  readonly #droppedWhileWorking = new Set<string>();

  constructor(budget: LiveStateBudget) {
    this.#budget = budget;
  }

  /** Takes the run's state `gen` out of the table (the step gives it back, under a new gen, once it is done with it). */
  take(run: string, gen: number): unknown {
    const live = this.#states.get(run);
    if (live?.gen !== gen) throw new StepFailure(STATE_NOT_LIVE, `the run's state ${gen} is not live in this thread`);
    this.drop(run);
    return live.state;
  }

  /** The run's state `gen`, left in the table (used now). */
  peek(run: string, gen: number): unknown {
    const live = this.#states.get(run);
    if (live?.gen !== gen) throw new StepFailure(STATE_NOT_LIVE, `the run's state ${gen} is not live in this thread`);
    this.#states.delete(run);
    live.usedAt = Date.now();
    this.#states.set(run, live);
    return live.state;
  }

  /** A step starts working on the run (out of the table until it keeps the state again, if it may). */
  begin(run: string): void {
    this.#working.add(run);
    this.#droppedWhileWorking.delete(run);
  }

  /** The step on the run is over (kept or not). */
  end(run: string): void {
    this.#working.delete(run);
    this.#droppedWhileWorking.delete(run);
  }

  /** The host let go of the run: its state goes, and a step working on it now keeps none. */
  release(run: string): void {
    this.drop(run);
    if (this.#working.has(run)) this.#droppedWhileWorking.add(run);
  }

  /** Keeps a state when it fits the budget, making room by dropping the least recently used others; false when it does not fit at all, or the run was let go of while its step worked. */
  keep(run: string, gen: number, state: unknown): boolean {
    this.drop(run);
    if (this.#droppedWhileWorking.has(run)) return false;
    const bytes = sizeOf(state);
    if (bytes > this.#budget.maxBytes || this.#budget.maxRuns < 1) return false;
    for (const [other, live] of this.#states) {
      if (this.#bytes + bytes <= this.#budget.maxBytes && this.#states.size < this.#budget.maxRuns) break;
      this.#states.delete(other);
      this.#bytes -= live.bytes;
    }
    this.#states.set(run, { gen, state, bytes, usedAt: Date.now() });
    this.#bytes += bytes;
    return true;
  }

  drop(run: string): void {
    const live = this.#states.get(run);
    if (live === undefined) return;
    this.#states.delete(run);
    this.#bytes -= live.bytes;
  }

  dropIdle(now: number): void {
    for (const [run, live] of this.#states) if (now - live.usedAt >= this.#budget.idleMs) this.drop(run);
  }

  report(): LiveReport {
    return { runs: this.#states.size, bytes: this.#bytes };
  }
}

/**
 * An estimate of the memory a state holds: typed arrays' buffers (each once), strings,
 * 8 bytes a number; an array whose first element is a number is taken as numbers throughout.
 */
function sizeOf(root: unknown): number {
  let bytes = 0;
  const buffers = new Set<ArrayBufferLike>();
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') bytes += 16 + 2 * value.length;
    else if (typeof value !== 'object' || value === null) bytes += 8;
    else if (seen.has(value)) continue;
    else {
      seen.add(value);
      if (ArrayBuffer.isView(value)) {
        if (!buffers.has(value.buffer)) bytes += value.buffer.byteLength;
        buffers.add(value.buffer);
      } else if (value instanceof ArrayBuffer) {
        if (!buffers.has(value)) bytes += value.byteLength;
        buffers.add(value);
      } else if (Array.isArray(value) && typeof value[0] === 'number') bytes += 16 + 8 * value.length;
      else if (value instanceof Map) {
        bytes += 32;
        for (const [k, v] of value) stack.push(k, v);
      } else if (value instanceof Set) {
        bytes += 32;
        for (const v of value) stack.push(v);
      } else {
        bytes += 32;
        for (const v of Object.values(value)) stack.push(v);
      }
    }
  }
  return bytes;
}

async function step(config: ThreadConfig, incremental: IncrementalAlgorithm, context: AlgorithmContext, live: LiveStates, request: Exclude<IncrementalRequest, { type: 'encode' | 'drop' }>): Promise<IncrementalReply> {
  const run = headerOf(request.header);
  const algorithmStep = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw new StepFailure(codeOf(err) === 'SEGMENT_MISMATCH' ? 'SEGMENT_MISMATCH' : 'ALGORITHM_FAILED', messageOf(err));
    }
  };
  const stateOf = (from: StateSource): unknown => ('bytes' in from ? decodeState(new Uint8Array(from.bytes)) : live.take(request.run, from.gen));
  switch (request.type) {
    case 'open': {
      live.drop(request.run);
      const undeclared = request.requireDeidentified ? deidentificationProblem(run.header) : undefined;
      if (undeclared !== undefined) throw new StepFailure('DEIDENTIFICATION_MISSING', undeclared);
      // The frame count is not known yet: everything else of the input contract is checked now.
      const problem = inputContractProblem(config.input, run.header, { ...run.layout, frameCount: Math.max(1, config.input.minFrames) });
      if (problem !== undefined) throw new StepFailure('UNSUPPORTED_DICOM', problem);
      const state = await algorithmStep(() => incremental.createState({ header: run.header, layout: run.layout }, context));
      // The first checkpoint is written at once: its bytes go back whether or not the state is kept.
      const bytes = checkpoint(state);
      const kept = live.keep(request.run, request.gen, state);
      return { type: 'stepped', id: request.id, kept, state: bytes, decoded: false, eventsJson: '[]', live: live.report() };
    }
    case 'segment': {
      // The input contract's frame limit holds while the run streams, not only at its end: an algorithm's state may grow with its frames.
      const upTo = request.firstFrame + request.frameCount;
      if (upTo > config.input.maxFrames) throw new StepFailure('UNSUPPORTED_DICOM', `the run reaches ${upTo} frames; this algorithm accepts at most ${config.input.maxFrames}`);
      let frames;
      try {
        frames = segmentFrames(run, new Uint8Array(request.pixels), request.frameCount);
      } catch (err) {
        throw new StepFailure(codeOf(err) ?? 'SEGMENT_MISMATCH', messageOf(err));
      }
      // Out of the table from here: a fold that fails leaves no half-changed state behind.
      const decoded = 'bytes' in request.from;
      const state = stateOf(request.from);
      live.drop(request.run); // a state restored from bytes replaces any live one of the run
      const events = await algorithmStep(() => incremental.onFrames(state, { firstFrame: request.firstFrame, frames }, context));
      const eventsJson = JSON.stringify(events);
      const kept = live.keep(request.run, request.gen, state);
      const bytes = request.encode || !kept ? checkpoint(state) : undefined;
      // An algorithm that only borrows its frames is done with them: their buffer goes back, for the host to read a later segment into.
      const given = incremental.borrowsFrames === true && request.pixels.byteLength > 0 ? { pixels: request.pixels } : {};
      return { type: 'stepped', id: request.id, kept, state: bytes, decoded, eventsJson, live: live.report(), ...given };
    }
    case 'finish': {
      const decoded = 'bytes' in request.from;
      const state = stateOf(request.from);
      live.drop(request.run);
      const problem = inputContractProblem(config.input, run.header, { ...run.layout, frameCount: request.frames });
      if (problem !== undefined) throw new StepFailure('UNSUPPORTED_DICOM', problem);
      const output = await algorithmStep(() => incremental.finish(state, context));
      const outputJson = JSON.stringify(output) as string | undefined;
      if (outputJson === undefined) throw new StepFailure('OUTPUT_INVALID', 'the algorithm returned no JSON value');
      return { type: 'finished', id: request.id, decoded, outputJson, live: live.report() };
    }
  }
}

/** The state's checkpoint bytes in a buffer of their own (transferred to the host). */
function checkpoint(state: unknown): ArrayBuffer {
  try {
    const bytes = encodeState(state);
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  } catch (err) {
    throw new StepFailure('ALGORITHM_FAILED', messageOf(err));
  }
}

async function main(port: MessagePort, config: IncrementalThreadConfig): Promise<void> {
  let loaded;
  try {
    loaded = await load(config);
  } catch (err) {
    port.postMessage({ type: 'load-failed', message: messageOf(err) } satisfies IncrementalReply);
    return;
  }
  const { algorithm, inference } = loaded;
  const { signal } = new AbortController();
  const context: AlgorithmContext = inference ? { signal, inference } : { signal };
  const live = new LiveStates(config.live);
  setInterval(() => live.dropIdle(Date.now()), Math.max(1_000, Math.round(config.live.idleMs / 4))).unref();
  port.on('message', (request: IncrementalRequest) => {
    const answer = (reply: IncrementalReply): void => {
      const transfer: ArrayBuffer[] = [];
      if ((reply.type === 'stepped' || reply.type === 'encoded') && reply.state !== undefined) transfer.push(reply.state);
      if (reply.type === 'stepped' && reply.pixels !== undefined) transfer.push(reply.pixels); // detaches every view of them here
      port.postMessage(reply, transfer);
    };
    if (request.type === 'drop') {
      // A step of the run in progress (its lease lost, its host gave up on it) keeps nothing when it ends.
      live.release(request.run);
      return;
    }
    if (algorithm.incremental === undefined) {
      answer({ type: 'failed', id: request.id, code: 'NOT_INCREMENTAL', message: 'this algorithm version has no incremental contract: send the whole run' });
      return;
    }
    if (request.type === 'encode') {
      try {
        answer({ type: 'encoded', id: request.id, state: checkpoint(live.peek(request.run, request.gen)) });
      } catch (err) {
        answer({ type: 'failed', id: request.id, code: err instanceof StepFailure ? err.code : 'ALGORITHM_FAILED', message: messageOf(err) });
      }
      return;
    }
    live.begin(request.run);
    step(config, algorithm.incremental, context, live, request)
      .then(answer, (err: unknown) => {
        answer({ type: 'failed', id: request.id, code: err instanceof StepFailure ? err.code : 'ALGORITHM_FAILED', message: messageOf(err) });
      })
      .finally(() => live.end(request.run));
  });
  // Whether the version has an incremental contract: a thread started ahead of any run (IncrementalRunner.warm) that has none is stopped.
  port.postMessage({ type: 'ready', incremental: algorithm.incremental !== undefined } satisfies IncrementalReply);
}

if (!parentPort) throw new Error('incremental-thread runs only inside an algorithm worker thread');
await main(parentPort, workerData as IncrementalThreadConfig);
