import { collectFrames, decodeRun, openFrameStream, stackBatches } from '@arteria/dicom';
import type { Algorithm } from './algorithm.js';
import type { InferenceBackend } from './inference.js';

export interface RunOnDicomOptions {
  signal?: AbortSignal;
  /** Given to the algorithm as `context.inference` (onnx runtime algorithms). */
  inference?: InferenceBackend;
}

/**
 * Decodes a Part 10 run the way the platform does and runs the algorithm on it: what
 * algorithm authors call from their own unit tests. It runs in the caller's thread; for
 * the platform's isolated runner, limits and output schema, use `arteria algorithm test`
 * (@arteria/algorithm-kit).
 */
export async function runAlgorithmOnDicom<O>(algorithm: Algorithm<O>, bytes: Uint8Array, options: RunOnDicomOptions = {}): Promise<O> {
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const { header, frames } = await decodeRun(bytes);
  return await algorithm.run({ header, frames }, options.inference ? { signal, inference: options.inference } : { signal });
}

export interface StreamOnDicomOptions extends RunOnDicomOptions {
  /** Bytes per chunk handed to the decoder, as a store would deliver them; default 1 MiB. */
  chunkBytes?: number;
  /** Pixel bytes per frame batch; default the platform's. */
  batchBytes?: number;
}

/**
 * Streams a Part 10 run into the algorithm in chunks, as the platform does with a run it
 * reads from the store: `runStream` when the algorithm has one, else `run` on the
 * collected run. Authors compare its output with runAlgorithmOnDicom's.
 */
export async function streamAlgorithmOnDicom<O>(algorithm: Algorithm<O>, bytes: Uint8Array, options: StreamOnDicomOptions = {}): Promise<O> {
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  // eslint-disable-next-line @typescript-eslint/require-await -- async on purpose: it stands in for the store's stream
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < bytes.length; at += chunkBytes) yield bytes.subarray(at, at + chunkBytes);
  }
  const opened = await openFrameStream(chunks(), bytes.length, options.batchBytes === undefined ? {} : { batchBytes: options.batchBytes });
  if (opened.kind === 'whole') {
    const { header, frames } = await decodeRun(opened.bytes);
    if (algorithm.runStream === undefined) return await algorithm.run({ header, frames }, { signal });
    return await algorithm.runStream({ header, frames, batches: stackBatches(frames, 8) }, { signal });
  }
  if (algorithm.runStream !== undefined) return await algorithm.runStream(opened, { signal });
  return await algorithm.run({ header: opened.header, frames: await collectFrames(opened.frames, opened.batches) }, { signal });
}
