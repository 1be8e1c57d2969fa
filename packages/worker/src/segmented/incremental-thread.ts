/**
 * Entry of an algorithm's incremental thread (segmented runs): imports the algorithm once,
 * then per step reads the run's header, restores the state from its checkpoint, feeds the
 * segment's frames (or finishes) and answers with the new checkpoint and the events, or
 * the output. Isolated like the one-shot threads: own heap limit, empty environment; the
 * host owns timeouts and terminates this thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { readSegmentedHeader, segmentFrames, type SegmentedRunHeader } from '@arteria/dicom';
import { decodeState, encodeState, type Algorithm, type AlgorithmContext, type InferenceBackend, type IncrementalAlgorithm } from '@arteria/sdk';
import { deidentificationProblem, inputContractProblem } from '../algorithms/input-contract.js';
import type { ThreadConfig } from '../algorithms/sandbox-messages.js';
import type { IncrementalReply, IncrementalRequest } from './incremental-messages.js';

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

async function step(config: ThreadConfig, incremental: IncrementalAlgorithm, context: AlgorithmContext, request: IncrementalRequest): Promise<IncrementalReply> {
  const run = headerOf(request.header);
  const algorithmStep = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw new StepFailure(codeOf(err) === 'SEGMENT_MISMATCH' ? 'SEGMENT_MISMATCH' : 'ALGORITHM_FAILED', messageOf(err));
    }
  };
  switch (request.type) {
    case 'open': {
      const undeclared = request.requireDeidentified ? deidentificationProblem(run.header) : undefined;
      if (undeclared !== undefined) throw new StepFailure('DEIDENTIFICATION_MISSING', undeclared);
      // The frame count is not known yet: everything else of the input contract is checked now.
      const problem = inputContractProblem(config.input, run.header, { ...run.layout, frameCount: Math.max(1, config.input.minFrames) });
      if (problem !== undefined) throw new StepFailure('UNSUPPORTED_DICOM', problem);
      const state = await algorithmStep(() => incremental.createState({ header: run.header, layout: run.layout }, context));
      return { type: 'stepped', id: request.id, state: checkpoint(state), eventsJson: '[]' };
    }
    case 'segment': {
      let frames;
      try {
        frames = segmentFrames(run, new Uint8Array(request.pixels), request.frameCount);
      } catch (err) {
        throw new StepFailure(codeOf(err) ?? 'SEGMENT_MISMATCH', messageOf(err));
      }
      const state = decodeState(new Uint8Array(request.state));
      const events = await algorithmStep(() => incremental.onFrames(state, { firstFrame: request.firstFrame, frames }, context));
      return { type: 'stepped', id: request.id, state: checkpoint(state), eventsJson: JSON.stringify(events) };
    }
    case 'finish': {
      const problem = inputContractProblem(config.input, run.header, { ...run.layout, frameCount: request.frames });
      if (problem !== undefined) throw new StepFailure('UNSUPPORTED_DICOM', problem);
      const output = await algorithmStep(() => incremental.finish(decodeState(new Uint8Array(request.state)), context));
      const outputJson = JSON.stringify(output) as string | undefined;
      if (outputJson === undefined) throw new StepFailure('OUTPUT_INVALID', 'the algorithm returned no JSON value');
      return { type: 'finished', id: request.id, outputJson };
    }
  }
}

function checkpoint(state: unknown): ArrayBuffer {
  try {
    const bytes = encodeState(state);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  } catch (err) {
    throw new StepFailure('ALGORITHM_FAILED', messageOf(err));
  }
}

async function main(port: MessagePort, config: ThreadConfig): Promise<void> {
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
  port.on('message', (request: IncrementalRequest) => {
    const answer = (reply: IncrementalReply): void => port.postMessage(reply, reply.type === 'stepped' ? [reply.state] : []);
    if (algorithm.incremental === undefined) {
      answer({ type: 'failed', id: request.id, code: 'NOT_INCREMENTAL', message: 'this algorithm version has no incremental contract: send the whole run' });
      return;
    }
    step(config, algorithm.incremental, context, request).then(answer, (err: unknown) => {
      answer({ type: 'failed', id: request.id, code: err instanceof StepFailure ? err.code : 'ALGORITHM_FAILED', message: messageOf(err) });
    });
  });
  port.postMessage({ type: 'ready' } satisfies IncrementalReply);
}

if (!parentPort) throw new Error('incremental-thread runs only inside an algorithm worker thread');
await main(parentPort, workerData as ThreadConfig);
