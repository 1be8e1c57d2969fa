import { isDeepStrictEqual } from 'node:util';
import { ArteriaError } from '@arteria/protocol';
import { decodeRun, type FrameStack } from '@arteria/dicom';
import type { Algorithm, AlgorithmContext } from './algorithm.js';
import { decodeState, encodeState, streamLayoutOf, type PartialEvent } from './incremental.js';
import type { RunOnDicomOptions } from './harness.js';

export interface IncrementalOnDicomOptions extends RunOnDicomOptions {
  /** Frames per segment, as a gateway would cut the run while it is acquired; default 8. */
  framesPerSegment?: number;
  /** Checkpoint and restore the state between segments, as a replaced worker would; default true. */
  checkpoint?: boolean;
}

export interface IncrementalRun<O> {
  output: O;
  /** Every partial event, with the number of frames seen when it was reported. */
  events: { event: PartialEvent; framesSeen: number }[];
  /** Bytes of the largest checkpoint taken. */
  largestCheckpointBytes: number;
}

/**
 * Runs the algorithm's incremental contract on a Part 10 run cut into segments, each
 * state going through a checkpoint (encodeState, decodeState) before the next segment,
 * as the platform does with a run sent while it is acquired.
 */
export async function incrementalAlgorithmOnDicom<O>(algorithm: Algorithm<O>, bytes: Uint8Array, options: IncrementalOnDicomOptions = {}): Promise<IncrementalRun<O>> {
  const incremental = algorithm.incremental;
  if (incremental === undefined) throw new ArteriaError('ALGORITHM_FAILED', 'the algorithm has no incremental contract');
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const context: AlgorithmContext = options.inference ? { signal, inference: options.inference } : { signal };
  const perSegment = options.framesPerSegment ?? 8;
  if (!Number.isSafeInteger(perSegment) || perSegment < 1) throw new ArteriaError('INTERNAL', `framesPerSegment must be a positive integer, got ${perSegment}`);
  const { header, frames } = await decodeRun(bytes);
  let largestCheckpointBytes = 0;
  const carry = (state: unknown): unknown => {
    if (options.checkpoint === false) return state;
    const checkpoint = encodeState(state);
    largestCheckpointBytes = Math.max(largestCheckpointBytes, checkpoint.length);
    return decodeState(checkpoint);
  };
  let state = carry(incremental.createState({ header, layout: streamLayoutOf(frames) }, context));
  const events: IncrementalRun<O>['events'] = [];
  const plane = frames.rows * frames.columns;
  for (let first = 0; first < frames.frameCount; first += perSegment) {
    const count = Math.min(perSegment, frames.frameCount - first);
    const segment: FrameStack = { ...frames, frameCount: count, pixels: frames.pixels.subarray(first * plane, (first + count) * plane) };
    for (const event of await incremental.onFrames(state, { firstFrame: first, frames: segment }, context)) events.push({ event, framesSeen: first + count });
    state = carry(state);
  }
  return { output: await incremental.finish(state, context), events, largestCheckpointBytes };
}

/**
 * Proves an algorithm's incremental contract: for each segment size, the output after the
 * last segment (with a checkpoint between every two) equals the one-shot `run`'s output,
 * and no event key is reported twice. Throws ALGORITHM_FAILED naming the first
 * difference; returns the events of the first segmentation.
 */
export async function checkIncremental<O>(algorithm: Algorithm<O>, bytes: Uint8Array, options: RunOnDicomOptions & { segmentSizes?: readonly number[] } = {}): Promise<IncrementalRun<O>> {
  const { header, frames } = await decodeRun(bytes);
  const signal = options.signal ?? new AbortController().signal;
  const expected = await algorithm.run({ header, frames }, options.inference ? { signal, inference: options.inference } : { signal });
  let first: IncrementalRun<O> | undefined;
  for (const framesPerSegment of options.segmentSizes ?? [1, 7, frames.frameCount]) {
    const run = await incrementalAlgorithmOnDicom(algorithm, bytes, { ...options, framesPerSegment });
    if (!isDeepStrictEqual(run.output, expected)) {
      throw new ArteriaError('ALGORITHM_FAILED', `incremental output with ${framesPerSegment} frames per segment differs from run's: ${JSON.stringify(run.output)} vs ${JSON.stringify(expected)}`);
    }
    const keys = run.events.map(({ event }) => event.key);
    if (new Set(keys).size !== keys.length) throw new ArteriaError('ALGORITHM_FAILED', `an event key was reported twice: ${keys.join(', ')}`);
    first ??= run;
  }
  if (first === undefined) throw new ArteriaError('INTERNAL', 'checkIncremental needs at least one segment size');
  return first;
}
