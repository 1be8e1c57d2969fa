import { open } from 'node:fs/promises';
import { ArteriaError, epochNow, toArteriaError } from '@arteria/protocol';
import type { Outbox, OutboxEntry } from '../outbox/outbox.js';
import type { GatewayResult } from '../types.js';

/** A frame source's spool is fsynced at most this often (default), whatever the frame rate. */
export const DEFAULT_FRAME_SYNC_MS = 100;

export interface FrameSourceContext {
  outbox: Outbox;
  entry: OutboxEntry;
  frameBytes: number;
  /** Frames already spooled and durable (a run joined again after a restart goes on from there). */
  framesAccepted: number;
  /** A segment's worth of frames waiting is synced at once: the segment is not held back. */
  framesPerSegment: number;
  /** At most one fsync of the spool per this many ms, besides a segment's worth and the end. */
  syncEveryMs: number;
  /** The run's result, as send() waits for it. */
  result: Promise<GatewayResult>;
  /** These many frames are durable: the streamer may cut them (and is told to look now). */
  durable: (frames: number) => void;
}

interface Waiter {
  /** Resolved once this many frames are durable. */
  frames: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** fsync of a file's data (any descriptor of the file makes all its written data durable). */
export async function syncFile(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    await file.datasync();
  } finally {
    await file.close();
  }
}

async function writeAt(path: string, bytes: Uint8Array, position: number): Promise<void> {
  const file = await open(path, 'r+');
  try {
    for (let done = 0; done < bytes.byteLength; ) {
      const { bytesWritten } = await file.write(bytes, done, bytes.byteLength - done, position + done);
      done += bytesWritten;
    }
  } finally {
    await file.close();
  }
}

/**
 * Makes a frame source's spool whole frames and durable before the device is told where to
 * go on: a partial frame left by a crash mid-write is cut off, and what stays is fsynced.
 * Returns the frames it holds.
 */
export async function settleSpool(path: string, frameBytes: number): Promise<number> {
  const file = await open(path, 'r+').catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  });
  if (file === undefined) return 0;
  try {
    const { size } = await file.stat();
    const frames = Math.floor(size / frameBytes);
    if (frames * frameBytes !== size) await file.truncate(frames * frameBytes);
    await file.datasync();
    return frames;
  } finally {
    await file.close();
  }
}

/**
 * A run a device hands over frame by frame while it acquires it (`Gateway.openFrameSource`).
 *
 * Accepted means durable: `push()` resolves once its frames are written to the run's spool
 * file and fsynced, so an acknowledged frame survives a crash or a power cut, and
 * `framesAccepted` counts only such frames. The fsyncs are shared: frames pushed while one is
 * pending are synced together, at most once per `syncEveryMs` (at once when a segment's worth
 * waits, and at `end()`), so a device at 30 fps that keeps its pushes in flight costs a few
 * fsyncs a second rather than one a frame. The gateway cuts only durable frames into
 * segments, so a segment never holds a frame the device could have to send again.
 * `end()` says the run is over; `result` is its final result. A gateway restarted mid-run
 * resumes what was accepted; the device opens the same header again to go on, from
 * `framesAccepted`.
 */
export class FrameSource {
  readonly entryId: string;
  /** The run's id (segmentedRunId): also the requestId of its partial and final results. */
  readonly requestId: string;
  readonly frameBytes: number;
  readonly result: Promise<GatewayResult>;
  readonly #ctx: FrameSourceContext;
  /** Frames durable in the spool. */
  #accepted: number;
  /** Frames written to the spool (durable or not). */
  #written: number;
  #ended = false;
  #writing: Promise<void> = Promise.resolve();
  readonly #waiting: Waiter[] = [];
  #syncTimer: NodeJS.Timeout | undefined;
  #syncDueAt = Infinity;
  #syncing = false;
  #lastSyncAt = 0;
  /** A failed fsync leaves the spool's state unknown: no frame is accepted after it. */
  #broken: ArteriaError | undefined;

  constructor(context: FrameSourceContext) {
    this.#ctx = context;
    this.entryId = context.entry.id;
    this.requestId = context.entry.requestId ?? '';
    this.frameBytes = context.frameBytes;
    this.#accepted = context.framesAccepted;
    this.#written = context.framesAccepted;
    this.result = context.result;
    context.durable(this.#accepted);
    // A caller that only pushes must not see an unhandled rejection; the promise still rejects for those who await it.
    this.result.catch(() => undefined);
  }

  /** Frames accepted so far: written and fsynced. */
  get framesAccepted(): number {
    return this.#accepted;
  }

  /**
   * Appends whole frames (a multiple of frameBytes, the native pixel bytes in order); resolves
   * once they are durable. Pushes keep their order; a device need not wait for one to resolve
   * before the next (and should not at high frame rates: each resolves within about
   * `syncEveryMs`).
   */
  push(frames: Uint8Array): Promise<void> {
    if (this.#ended) return Promise.reject(new ArteriaError('INVALID_REQUEST', 'the run has ended; no more frames are taken'));
    if (frames.byteLength === 0 || frames.byteLength % this.frameBytes !== 0) {
      return Promise.reject(new ArteriaError('INVALID_REQUEST', `frames must be whole frames of ${this.frameBytes} bytes; got ${frames.byteLength} bytes`));
    }
    const written = this.#writing.then(async () => {
      if (this.#broken !== undefined) throw this.#broken;
      this.#assertLive();
      try {
        // At the frame boundary, not the file's end: a partial frame of an earlier failed write is overwritten.
        await writeAt(this.#ctx.entry.sourcePath, frames, this.#written * this.frameBytes);
      } catch (err) {
        // Later frames must not take this push's place: the device opens the run again and goes on from framesAccepted.
        this.#broken = toArteriaError(err, 'INTERNAL');
        throw this.#broken;
      }
      this.#written += frames.byteLength / this.frameBytes;
      return this.#written;
    });
    this.#writing = written.then(() => undefined, () => undefined);
    return written.then((upTo) => this.#durableUpTo(upTo));
  }

  /** The run is over: it has the frames accepted. Resolves once every push is durable and the end is recorded. */
  async end(): Promise<void> {
    this.#ended = true;
    await this.#writing;
    await this.#durableUpTo(this.#written).catch(() => undefined); // #broken says it below
    if (this.#broken !== undefined) throw this.#broken;
    this.#assertLive();
    if (this.#accepted === 0) throw new ArteriaError('RUN_INCOMPLETE', 'the run ended before its first frame');
    this.#ctx.outbox.segments.end(this.entryId, this.#accepted);
    this.#ctx.durable(this.#accepted);
  }

  /** Resolves once `frames` frames are durable, syncing when due. */
  #durableUpTo(frames: number): Promise<void> {
    if (frames <= this.#accepted) return Promise.resolve();
    const durable = new Promise<void>((resolve, reject) => this.#waiting.push({ frames, resolve, reject }));
    this.#scheduleSync();
    return durable;
  }

  /** At once when a segment's worth waits or the run ended; else when `syncEveryMs` has passed since the last sync. */
  #scheduleSync(): void {
    if (this.#syncing || this.#waiting.length === 0) return; // a sync in progress looks again when it is done
    const now = epochNow();
    const waiting = this.#written - this.#accepted;
    const dueAt = this.#ended || waiting >= this.#ctx.framesPerSegment ? now : this.#lastSyncAt + this.#ctx.syncEveryMs;
    if (this.#syncTimer !== undefined) {
      if (dueAt >= this.#syncDueAt) return;
      clearTimeout(this.#syncTimer);
    }
    this.#syncDueAt = dueAt;
    this.#syncTimer = setTimeout(() => void this.#sync(), Math.max(0, dueAt - now));
  }

  async #sync(): Promise<void> {
    this.#syncTimer = undefined;
    this.#syncDueAt = Infinity;
    this.#syncing = true;
    this.#lastSyncAt = epochNow();
    const frames = this.#written; // what was written before this fsync: what it makes durable
    try {
      await syncFile(this.#ctx.entry.sourcePath);
      this.#accepted = Math.max(this.#accepted, frames);
      this.#ctx.durable(this.#accepted);
      this.#settle(this.#waiting.filter((w) => w.frames <= this.#accepted), undefined);
    } catch (err) {
      this.#broken = toArteriaError(err, 'INTERNAL');
      this.#settle([...this.#waiting], this.#broken);
    } finally {
      this.#syncing = false;
      this.#scheduleSync();
    }
  }

  #settle(waiters: Waiter[], error: ArteriaError | undefined): void {
    for (const waiter of waiters) {
      this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }

  #assertLive(): void {
    const state = this.#ctx.outbox.get(this.entryId)?.state;
    if (state !== 'pending') throw new ArteriaError('INVALID_REQUEST', `the run is ${state ?? 'gone'}; it takes no more frames`);
  }
}
