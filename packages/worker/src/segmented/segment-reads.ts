import { ArteriaError, MAX_SEGMENTED_HEADER_BYTES, MAX_SEGMENT_BYTES, MAX_SEGMENT_EXPANSION, type InputRef, type SegmentRef } from '@arteria/protocol';
import { assertAcceptedSize, assertInputInScope, type InputSource, type ParkedStep, type TaskV1 } from '@arteria/ports';
import { expandSegment } from './segment-encoding.js';

type SegmentStep = Extract<ParkedStep, { phase: 'segment' }>;

/** A segment read ahead of its fold: which object, and its bytes (or the read's failure). */
interface Ahead {
  object: SegmentRef;
  read: Promise<Uint8Array>;
}

/**
 * Spare segment buffers kept: one read ahead while one folds is what a run's steps in this
 * process use in turn, and one more for a step of another run in hand (at most 48 MiB at
 * the default 16 MiB segments).
 */
const MAX_SPARES = 3;

/** Spares unused this long are let go: a worker idle after a burst of big runs gives their memory back. */
const SPARE_IDLE_MS = 30_000;

/** Runs whose frame size is remembered (for compressed segments, below); the oldest is forgotten first. */
const MAX_RUN_FRAME_SIZES = 256;

/** Names one run, and one segment of one run. */
const runKey = (task: TaskV1): string => `${task.request.tenant}\0${task.request.id}`;
const segmentOf = (task: TaskV1, index: number): string => `${runKey(task)}\0${index}`;

/**
 * The objects of segmented runs as a worker reads them: whole, checked (size, SHA-256, the
 * requester's prefix), a segment's own limit bounding the memory. A segment step's bytes
 * may be read ahead, while the step before it in this process still folds (its bytes read
 * and hashed on this thread while the algorithm's thread folds the one before): a run's
 * steps are folded one after the other, so a read that waited for the fold before it made
 * each segment cost its read plus its fold. Each step reads at most its own segment ahead,
 * so this holds no more than one segment per step leased here, and only until its step ends.
 */
export class SegmentReads {
  readonly #inputs: InputSource;
  readonly #maxInputBytes: number;
  readonly #ahead = new Map<string, Ahead>();
  /** Segment buffers given back after their fold (spare), read into again by a segment of their size. */
  readonly #spares: ArrayBuffer[] = [];
  readonly #spareIdleMs: number;
  /**
   * Bytes per frame of runs whose compressed segments were expanded here: the next one's
   * frames are expected to fill `frameCount` times that, and are expanded into a spare
   * buffer of that size when there is one.
   */
  readonly #frameBytes = new Map<string, number>();
  #idle: NodeJS.Timeout | undefined;

  constructor(inputs: InputSource, maxInputBytes: number, spareIdleMs = SPARE_IDLE_MS) {
    this.#inputs = inputs;
    this.#maxInputBytes = maxInputBytes;
    this.#spareIdleMs = spareIdleMs;
  }

  /** An object of the run, whole and checked (a segment's frames expanded when it is stored compressed; `frameCount` its frames). */
  async read(task: TaskV1, object: InputRef | SegmentRef | undefined, frameCount?: number): Promise<{ bytes: Uint8Array; sha256: string }> {
    if (object === undefined) throw new ArteriaError('INVALID_REQUEST', 'inputs: empty');
    assertInputInScope(object, task.request); // again here: a task does not prove where it came from
    // The source checks bytes, not content types: a segment is read like any input.
    const ref: InputRef = { uri: object.uri, size: object.size, sha256: object.sha256, contentType: 'application/dicom' };
    // Read whole: the segment's (or header's) own limit bounds the memory, not the run's.
    const maxBytes = Math.min(this.#maxInputBytes, object.contentType === 'application/dicom' ? MAX_SEGMENTED_HEADER_BYTES : MAX_SEGMENT_BYTES);
    assertAcceptedSize(ref, maxBytes);
    const encoded = 'encoding' in object && object.encoding !== undefined;
    // A compressed segment's stored size says nothing of its frames' size: it is read into fresh memory.
    const into = object.contentType === 'application/dicom' || encoded ? undefined : this.#spare(object.size);
    const bytes = await this.#inputs.fetch(ref, { maxBytes, ...(into === undefined ? {} : { into }) });
    // Checked as stored (size, SHA-256), then expanded, never past a segment's own limit.
    const frames = encoded ? await this.#expand(task, object, bytes, frameCount) : bytes;
    return { bytes: new Uint8Array(frames.buffer, frames.byteOffset, frames.byteLength), sha256: object.sha256 };
  }

  async #expand(task: TaskV1, object: SegmentRef, stored: Uint8Array, frameCount: number | undefined): Promise<Uint8Array> {
    const run = runKey(task);
    const frameBytes = this.#frameBytes.get(run);
    const into = frameBytes === undefined || frameCount === undefined ? undefined : this.#spare(frameBytes * frameCount);
    const frames = await expandSegment(object, stored, Math.min(MAX_SEGMENT_BYTES, MAX_SEGMENT_EXPANSION * stored.length), into).catch((err: unknown) => {
      if (into !== undefined) this.spare(into.buffer as ArrayBuffer);
      throw err;
    });
    if (into !== undefined && frames.buffer !== into.buffer) this.spare(into.buffer as ArrayBuffer); // not the expected size: unused
    if (frameCount !== undefined && frames.length > 0 && frames.length % frameCount === 0) {
      this.#frameBytes.delete(run);
      this.#frameBytes.set(run, frames.length / frameCount);
      const oldest = this.#frameBytes.keys().next().value;
      if (this.#frameBytes.size > MAX_RUN_FRAME_SIZES && oldest !== undefined) this.#frameBytes.delete(oldest);
    }
    return frames;
  }

  /**
   * A segment's buffer its fold is done with (the algorithm's thread gave it back): a later
   * segment of its size is read into it, not into fresh memory, whose page faults cost more
   * CPU than the read (about 35 ms per 16 MiB). At most MAX_SPARES are kept, and none larger
   * than a segment; a run's segments are all of one size but its last. Spares nobody reads
   * into for SPARE_IDLE_MS are dropped.
   */
  spare(buffer: ArrayBuffer): void {
    if (buffer.byteLength === 0 || buffer.byteLength > MAX_SEGMENT_BYTES) return;
    this.#spares.push(buffer);
    if (this.#spares.length > MAX_SPARES) this.#spares.shift();
    this.#keepSpares();
  }

  /** (Re)starts the idle clock of the spares; it holds no process open. */
  #keepSpares(): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#spares.length === 0) return;
    this.#idle = setTimeout(() => {
      this.#spares.length = 0;
      this.#idle = undefined;
    }, this.#spareIdleMs);
    this.#idle.unref();
  }

  #spare(size: number): Uint8Array | undefined {
    const i = this.#spares.findIndex((b) => b.byteLength === size);
    if (i === -1) return undefined;
    const [buffer] = this.#spares.splice(i, 1);
    this.#keepSpares();
    return buffer === undefined ? undefined : new Uint8Array(buffer);
  }

  /**
   * Starts reading a segment step's own segment now; returns what its step calls once it
   * ends, folded or not, to let go of the bytes if no fold took them. Nothing for other steps.
   */
  ahead(task: TaskV1): () => void {
    const step = task.segmented;
    if (step?.phase !== 'segment') return () => undefined;
    const key = segmentOf(task, step.index);
    if (this.#ahead.has(key)) return () => undefined; // another delivery of the step reads it already
    const read = this.read(task, step.object, step.frameCount).then((r) => r.bytes);
    read.catch(() => undefined); // its fold reads it again, and fails with that read's error
    const ahead: Ahead = { object: step.object, read };
    this.#ahead.set(key, ahead);
    return () => {
      if (this.#ahead.get(key) === ahead) this.#ahead.delete(key);
    };
  }

  /**
   * A segment's bytes for its fold (the caller's to hand over): those read ahead for it when
   * that read went well, else read now. Bytes read ahead are taken by one fold only.
   */
  async segment(task: TaskV1, segment: SegmentStep): Promise<Uint8Array> {
    const key = segmentOf(task, segment.index);
    const ahead = this.#ahead.get(key);
    if (ahead !== undefined && sameObject(ahead.object, segment.object)) {
      this.#ahead.delete(key);
      const bytes = await ahead.read.catch(() => undefined);
      if (bytes !== undefined) return bytes;
    }
    return (await this.read(task, segment.object, segment.frameCount)).bytes;
  }
}

const sameObject = (a: SegmentRef, b: SegmentRef): boolean => a.uri === b.uri && a.size === b.size && a.sha256 === b.sha256;
