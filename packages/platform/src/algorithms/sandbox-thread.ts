/**
 * Entry of an algorithm's isolated thread. Imports the algorithm once, then per task:
 * decodes the DICOM (so a malformed file can only hurt this thread), checks the input
 * contract, runs the algorithm and posts back its output as JSON with timings.
 * The host sends one task at a time and owns timeouts: it terminates this thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { decodeRun, type DicomHeader, type FrameStack } from '@arteria/dicom';
import type { Algorithm, InferenceBackend } from '@arteria/sdk';
import { inputContractProblem } from './input-contract.js';
import type { TaskMessage, ThreadConfig, ThreadMessage } from './sandbox-messages.js';

/** Codes a decoding error keeps; anything else thrown while decoding is INVALID_DICOM. */
const DECODE_CODES = new Set(['UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'UNSUPPORTED_DICOM']);

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
  task: { id: number; bytes: ArrayBuffer | undefined },
): Promise<void> {
  const post = (message: ThreadMessage): void => port.postMessage(message);
  const fail = (code: string, message: string): void => post({ type: 'failed', id: task.id, code, message });

  const decodeStart = performance.now();
  let decoded: { header: DicomHeader; frames: FrameStack };
  try {
    decoded = await decodeRun(new Uint8Array(task.bytes ?? new ArrayBuffer(0)), { consumeBytes: true });
  } catch (err) {
    const code = codeOf(err);
    fail(code !== undefined && DECODE_CODES.has(code) ? code : 'INVALID_DICOM', messageOf(err));
    return;
  }
  const decodeMs = performance.now() - decodeStart;
  // This thread owns the file's bytes (transferred in): uncompressed frames are views of
  // them rather than a copy. Drop the reference so compressed runs free the file early.
  task.bytes = undefined;

  const problem = inputContractProblem(config.input, decoded.header, decoded.frames);
  if (problem !== undefined) {
    fail('UNSUPPORTED_DICOM', problem);
    return;
  }

  // The host stops a task by terminating this thread; the signal exists for the contract.
  const controller = new AbortController();
  const computeStart = performance.now();
  let output: unknown;
  try {
    output = await algorithm.run(
      { frames: decoded.frames, header: decoded.header },
      inference ? { signal: controller.signal, inference } : { signal: controller.signal },
    );
  } catch (err) {
    fail('ALGORITHM_FAILED', messageOf(err));
    return;
  }
  const computeMs = performance.now() - computeStart;

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
  post({ type: 'done', id: task.id, outputJson, decodeMs, computeMs });
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
  port.on('message', (task: TaskMessage) => {
    // Any rejection escaping here is a bug in this file; let it crash the thread loudly.
    void runTask(port, config, algorithm, inference, task);
  });
  port.postMessage({ type: 'ready' } satisfies ThreadMessage);
}

if (!parentPort) throw new Error('sandbox-thread runs only inside an algorithm worker thread');
await main(parentPort, workerData as ThreadConfig);
