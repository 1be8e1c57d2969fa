import { DefaultSerializer, deserialize } from 'node:v8';
import { ArteriaError } from '@arteria/protocol';
import type { DicomHeader, FrameLayout, FrameStack } from '@arteria/dicom';
import type { AlgorithmContext } from './algorithm.js';

/**
 * A run's frame geometry while it is still being acquired: everything but the frame
 * count, which is known only when the run ends.
 */
export type StreamLayout = Omit<FrameLayout, 'frameCount'>;

/** What an incremental run starts from: the run's header and its geometry. */
export interface IncrementalStart {
  header: DicomHeader;
  layout: StreamLayout;
}

/** The next frames of a run, in order: frame i of `frames` is frame `firstFrame + i` of the run. */
export interface FrameSegment {
  firstFrame: number;
  frames: FrameStack;
}

/**
 * An event an algorithm reports before the run ends, because it is already sure of it.
 * `key` names the event within its run: the platform reports each key at most once,
 * however often a segment is computed again after a worker is replaced.
 */
export interface PartialEvent {
  key: string;
  type: string;
  /** The frame the event is about (its first frame). */
  frame: number;
  [field: string]: unknown;
}

/**
 * An algorithm that takes a run while it is being acquired. The platform calls
 * `createState` when the run opens, `onFrames` with each segment of frames in order, and
 * `finish` once the run has ended; `finish` must give exactly the output the one-shot
 * `run` gives on the same frames (the SDK's `checkIncremental` proves it).
 *
 * The state is data only (numbers, strings, booleans, arrays, typed arrays, plain
 * objects, no class instances or functions): the platform keeps it between segments (the
 * next `onFrames` of the run may get the very object the last one changed), checkpoints it
 * (`encodeState`) when it writes the run's checkpoint, and a replacement worker carries on
 * from the copy: a state must behave the same kept or restored. `onFrames` may change the
 * state it is given and returns the events it is now sure of.
 */
export interface IncrementalAlgorithm<State = unknown, Output = unknown> {
  createState(start: IncrementalStart, context: AlgorithmContext): State;
  onFrames(state: State, segment: FrameSegment, context: AlgorithmContext): PartialEvent[] | Promise<PartialEvent[]>;
  finish(state: State, context: AlgorithmContext): Output | Promise<Output>;
  /**
   * True when `onFrames` only reads its segment's frames: once it has returned (its promise
   * settled) it keeps no view of `frames.pixels` or of their buffer, in its state or
   * elsewhere. The platform then takes the segment's memory back after each fold and reads
   * a later segment into it, instead of taking fresh memory for every segment (whose page
   * faults cost more CPU than reading the segment). A view kept anyway is found empty
   * (detached) afterwards. Default false: the frames are the algorithm's to keep.
   */
  readonly borrowsFrames?: boolean;
}

/** Version of the checkpoint framing, first byte of every encoded state. */
const STATE_FORMAT = 1;

/**
 * A checkpoint of an incremental state: V8's structured serialisation (typed arrays
 * stay binary), behind one format byte. Refuses what cannot be carried over (functions,
 * symbols) with ALGORITHM_FAILED.
 */
export function encodeState(state: unknown): Uint8Array {
  // The format byte, then what v8.serialize writes, in one buffer (a state of tens of MB is not copied again).
  const serializer = new DefaultSerializer();
  let body: Buffer;
  try {
    serializer.writeRawBytes(Uint8Array.of(STATE_FORMAT));
    serializer.writeHeader();
    serializer.writeValue(state);
    body = serializer.releaseBuffer();
  } catch (err) {
    throw new ArteriaError('ALGORITHM_FAILED', `the algorithm's incremental state cannot be checkpointed: ${(err as Error).message}`, { cause: err });
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** The state a checkpoint holds; INTERNAL when the bytes are not a checkpoint this SDK wrote. */
export function decodeState(bytes: Uint8Array): unknown {
  if (bytes[0] !== STATE_FORMAT) throw new ArteriaError('INTERNAL', `not an incremental-state checkpoint (format byte ${bytes[0] ?? 'missing'})`);
  try {
    return deserialize(bytes.subarray(1));
  } catch (err) {
    throw new ArteriaError('INTERNAL', `the incremental-state checkpoint cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** The layout of a stream, from a layout that knows its frame count. */
export function streamLayoutOf({ rows, columns, bitsStored, photometric, frameTimeMs }: FrameLayout): StreamLayout {
  return { rows, columns, bitsStored, photometric, frameTimeMs };
}

/** Refuses a segment that does not continue the run where the state left it. */
export function assertNextSegment(expectedFrame: number, segment: FrameSegment): void {
  if (segment.firstFrame !== expectedFrame) {
    throw new ArteriaError('ALGORITHM_FAILED', `segment starts at frame ${segment.firstFrame}, but the run continues at frame ${expectedFrame}`);
  }
}
