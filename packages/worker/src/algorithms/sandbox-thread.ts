/**
 * Entry of an algorithm's isolated thread. Imports the algorithm once, then per task:
 * decodes the DICOM (so a malformed file can only hurt this thread), checks the input
 * contract, runs the algorithm and posts back its output as JSON with timings. A task is
 * a whole file or a stream of chunks; a streamed native run reaches the algorithm in
 * frame batches while it is still being read (see openFrameStream).
 * The host sends one task at a time and owns timeouts: it terminates this thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { decodeRun, openFrameStream, readWhole, stackBatches, type DicomHeader, type FrameBatch, type FrameStack } from '@arteria/dicom';
import type { Algorithm, AlgorithmContext, InferenceBackend, StreamInput } from '@arteria/sdk';
import { ChunkChannel } from './sandbox-channel.js';
import { deidentificationProblem, inputContractProblem } from './input-contract.js';
import type { TaskMessage, ThreadConfig, ThreadMessage } from './sandbox-messages.js';

/** Codes a decoding error keeps; anything else thrown while decoding is INVALID_DICOM. */
const DECODE_CODES = new Set(['UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'UNSUPPORTED_DICOM', 'INPUT_TOO_LARGE']);

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

function asAlgorithm(module: unknown): Algorithm {
  const candidate = (module as { default?: unknown }).default;
  if (typeof candidate === 'object' && candidate !== null && typeof (candidate as { run?: unknown }).run === 'function') {
    return candidate as Algorithm;
  }
  throw new Error('the entry module has no default export with a run() function');
}

async function createInference(config: ThreadConfig): Promise<InferenceBackend | undefined> {
  if (config.inferenceModuleUrl === undefined || config.model === undefined) return undefined;
  const module = (await import(config.inferenceModuleUrl)) as { default?: unknown };
  if (typeof module.default !== 'function') throw new Error(`${config.inferenceModuleUrl} has no default export function`);
  const create = module.default as (model: ThreadConfig['model']) => Promise<InferenceBackend> | InferenceBackend;
  const backend = await create(config.model);
  await backend.load(config.model);
  return backend;
}

async function runTask(
  port: MessagePort,
  config: ThreadConfig,
  algorithm: Algorithm,
  inference: InferenceBackend | undefined,
  task: { id: number; bytes: Uint8Array | undefined; requireDeidentified: boolean },
  decodeStart = performance.now(),
): Promise<void> {
  const post = (message: ThreadMessage): void => port.postMessage(message);
  const fail = (code: string, message: string): void => post({ type: 'failed', id: task.id, code, message });

  let decoded: { header: DicomHeader; frames: FrameStack };
  try {
    decoded = await decodeRun(task.bytes ?? new Uint8Array(0), { consumeBytes: true });
  } catch (err) {
    const code = codeOf(err);
    fail(code !== undefined && DECODE_CODES.has(code) ? code : 'INVALID_DICOM', messageOf(err));
    return;
  }
  const decodeMs = performance.now() - decodeStart;
  // This thread owns the file's bytes (transferred in): uncompressed frames are views of
  // them rather than a copy. Drop the reference so compressed runs free the file early.
  task.bytes = undefined;

  const undeclared = task.requireDeidentified ? deidentificationProblem(decoded.header) : undefined;
  if (undeclared !== undefined) {
    fail('DEIDENTIFICATION_MISSING', undeclared);
    return;
  }
  const problem = inputContractProblem(config.input, decoded.header, decoded.frames);
  if (problem !== undefined) {
    fail('UNSUPPORTED_DICOM', problem);
    return;
  }

  const computeStart = performance.now();
  let output: unknown;
  try {
    output = await algorithm.run({ frames: decoded.frames, header: decoded.header }, contextFor(inference));
  } catch (err) {
    fail('ALGORITHM_FAILED', messageOf(err));
    return;
  }
  postOutput(port, task.id, output, decodeMs, performance.now() - computeStart);
}

/** The host stops a task by terminating this thread; the signal exists for the contract. */
function contextFor(inference: InferenceBackend | undefined): AlgorithmContext {
  const { signal } = new AbortController();
  return inference ? { signal, inference } : { signal };
}

function postOutput(port: MessagePort, id: number, output: unknown, decodeMs: number, computeMs: number): void {
  const fail = (code: string, message: string): void => port.postMessage({ type: 'failed', id, code, message } satisfies ThreadMessage);
  // Results travel as JSON: serialise here so the host validates exactly what is sent.
  let outputJson: string | undefined;
  try {
    outputJson = JSON.stringify(output);
  } catch (err) {
    fail('OUTPUT_INVALID', `output is not JSON-serialisable: ${messageOf(err)}`);
    return;
  }
  if (outputJson === undefined) {
    fail('OUTPUT_INVALID', 'the algorithm returned no JSON value');
    return;
  }
  // The thread's committed heap right after the run: it grows with the run's peak and
  // shrinks only slowly, so it shows how close the algorithm came to its memoryMb limit.
  const heapMb = getHeapStatistics().total_heap_size / 2 ** 20;
  port.postMessage({ type: 'done', id, outputJson, decodeMs, computeMs, heapMb } satisfies ThreadMessage);
}

/**
 * A streamed task. The algorithm's own streaming entry gets the frames as they arrive;
 * one without it gets the collected run. A run the stream decoder does not read (a
 * compressed syntax, a malformed file) is collected and decoded whole, as a whole-file
 * task is, so it fails with the same errors.
 */
async function runStreamTask(port: MessagePort, config: ThreadConfig, algorithm: Algorithm, inference: InferenceBackend | undefined, id: number, size: number, requireDeidentified: boolean, channel: ChunkChannel): Promise<void> {
  const fail = (code: string, message: string): void => port.postMessage({ type: 'failed', id, code, message } satisfies ThreadMessage);
  const decodeFailure = (err: unknown): void => {
    const code = codeOf(err);
    fail(code !== undefined && DECODE_CODES.has(code) ? code : 'INVALID_DICOM', messageOf(err));
  };
  const started = performance.now();
  if (algorithm.runStream === undefined) {
    // A whole-run algorithm needs every frame at once: the chunks are gathered into the
    // file's one buffer and decoded as a whole file, so native frames are views of it.
    const task = { id, bytes: undefined as Uint8Array | undefined, requireDeidentified };
    try {
      task.bytes = await readWhole(channel, size);
    } catch (err) {
      decodeFailure(err);
      return;
    }
    // Only the task holds the file: runTask drops it once decoded (compressed runs free it early).
    await runTask(port, config, algorithm, inference, task, started);
    return;
  }
  let input: StreamInput;
  try {
    const opened = await openFrameStream(channel, size);
    if (opened.kind === 'whole') {
      const { header, frames } = await decodeRun(opened.bytes, { consumeBytes: true });
      input = { header, frames, batches: stackBatches(frames, 8) };
    } else {
      input = opened;
    }
  } catch (err) {
    decodeFailure(err);
    return;
  }
  const undeclared = requireDeidentified ? deidentificationProblem(input.header) : undefined;
  if (undeclared !== undefined) {
    fail('DEIDENTIFICATION_MISSING', undeclared);
    return;
  }
  const problem = inputContractProblem(config.input, input.header, input.frames);
  if (problem !== undefined) {
    fail('UNSUPPORTED_DICOM', problem);
    return;
  }
  // Frames that cannot be read fail the task as a decoding error, not as the algorithm's.
  // Time spent reading and decoding (waiting for the store included); the rest is computing.
  let decodeMs = performance.now() - started;
  let broken: unknown;
  const source = input.batches;
  async function* watched(): AsyncGenerator<FrameBatch> {
    const iterator = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const asked = performance.now();
        const next = await iterator.next();
        decodeMs += performance.now() - asked;
        if (next.done === true) return;
        yield next.value;
      }
    } catch (err) {
      broken = err;
      throw err;
    } finally {
      await iterator.return?.();
    }
  }
  let output: unknown;
  try {
    output = await algorithm.runStream({ header: input.header, frames: input.frames, batches: watched() }, contextFor(inference));
  } catch (err) {
    if (broken !== undefined) decodeFailure(broken);
    else fail('ALGORITHM_FAILED', messageOf(err));
    return;
  }
  postOutput(port, id, output, decodeMs, Math.max(0, performance.now() - started - decodeMs));
}

/**
 * The whole file a message hands over: a whole-file task, or a stream that arrived whole in
 * its one chunk (a small input, read in one step), decoded as a whole file too: nothing
 * would overlap, and the stream's awaits between header and batches kept V8 collecting this
 * thread's old generation again and again. Undefined for a stream's parts.
 */
function wholeFileTask(message: TaskMessage): { id: number; bytes: Uint8Array; requireDeidentified: boolean } | undefined {
  const { id } = message;
  if (message.type === 'task') return { id, bytes: new Uint8Array(message.bytes), requireDeidentified: message.requireDeidentified };
  if (message.type === 'begin' && message.ended && message.bytes?.byteLength === message.size) return { id, bytes: new Uint8Array(message.bytes), requireDeidentified: message.requireDeidentified };
  return undefined;
}

async function main(port: MessagePort, config: ThreadConfig): Promise<void> {
  let algorithm: Algorithm;
  let inference: InferenceBackend | undefined;
  try {
    algorithm = asAlgorithm(await import(config.entryUrl));
    inference = await createInference(config);
  } catch (err) {
    port.postMessage({ type: 'load-failed', message: messageOf(err) } satisfies ThreadMessage);
    return;
  }
  const streams = new Map<number, ChunkChannel>();
  port.on('message', (message: TaskMessage) => {
    const whole = wholeFileTask(message);
    if (whole !== undefined) {
      // Any rejection escaping here is a bug in this file; let it crash the thread loudly.
      void runTask(port, config, algorithm, inference, whole);
      return;
    }
    switch (message.type) {
      case 'begin': {
        // A stream that ended with its begin owes the host no credit: nothing more is sent.
        const channel = new ChunkChannel(message.ended ? () => undefined : (bytes) => port.postMessage({ type: 'credit', id: message.id, bytes } satisfies ThreadMessage));
        if (message.bytes !== undefined) channel.push(message.bytes);
        if (message.ended) channel.end(false);
        else streams.set(message.id, channel);
        void runStreamTask(port, config, algorithm, inference, message.id, message.size, message.requireDeidentified, channel).finally(() => streams.delete(message.id));
        return;
      }
      case 'chunk':
        // Chunks of a task that already finished (it failed early) are dropped.
        streams.get(message.id)?.push(message.bytes);
        return;
      case 'end':
        streams.get(message.id)?.end(message.abandoned);
        return;
    }
  });
  port.postMessage({ type: 'ready', wholeRuns: algorithm.runStream === undefined } satisfies ThreadMessage);
}

if (!parentPort) throw new Error('sandbox-thread runs only inside an algorithm worker thread');
await main(parentPort, workerData as ThreadConfig);
