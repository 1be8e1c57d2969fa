import { open } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';
import type { Outbox, OutboxEntry } from './outbox.js';
import type { GatewayResult } from './types.js';

export interface FrameSourceContext {
  outbox: Outbox;
  entry: OutboxEntry;
  frameBytes: number;
  /** Frames already spooled (a run joined again after a restart goes on from there). */
  framesAccepted: number;
  /** The run's result, as send() waits for it. */
  result: Promise<GatewayResult>;
  /** Tells the streamer there is more to look at. */
  wake: () => void;
}

/**
 * A run a device hands over frame by frame while it acquires it (`Gateway.openFrameSource`).
 * `push()` appends whole frames to the run's spool file and resolves once they are on disk
 * (from then on they survive a restart); the gateway cuts them into segments, uploads and
 * announces them as they come. `end()` says the run is over; `result` is its final result.
 * A gateway restarted mid-run resumes what was pushed; the device opens the same header
 * again to go on, from `framesAccepted`.
 */
export class FrameSource {
  readonly entryId: string;
  /** The run's id (segmentedRunId): also the requestId of its partial and final results. */
  readonly requestId: string;
  readonly frameBytes: number;
  readonly result: Promise<GatewayResult>;
  readonly #ctx: FrameSourceContext;
  #accepted: number;
  #ended = false;
  #writing: Promise<void> = Promise.resolve();

  constructor(context: FrameSourceContext) {
    this.#ctx = context;
    this.entryId = context.entry.id;
    this.requestId = context.entry.requestId ?? '';
    this.frameBytes = context.frameBytes;
    this.#accepted = context.framesAccepted;
    this.result = context.result;
    // A caller that only pushes must not see an unhandled rejection; the promise still rejects for those who await it.
    this.result.catch(() => undefined);
  }

  /** Frames on disk so far. */
  get framesAccepted(): number {
    return this.#accepted;
  }

  /** Appends whole frames (a multiple of frameBytes, the native pixel bytes in order); resolves once they are durable. */
  push(frames: Uint8Array): Promise<void> {
    if (this.#ended) return Promise.reject(new ArteriaError('INVALID_REQUEST', 'the run has ended; no more frames are taken'));
    if (frames.byteLength === 0 || frames.byteLength % this.frameBytes !== 0) {
      return Promise.reject(new ArteriaError('INVALID_REQUEST', `frames must be whole frames of ${this.frameBytes} bytes; got ${frames.byteLength} bytes`));
    }
    const write = this.#writing.then(async () => {
      this.#assertLive();
      const file = await open(this.#ctx.entry.sourcePath, 'a');
      try {
        await file.write(frames);
        await file.datasync();
      } finally {
        await file.close();
      }
      this.#accepted += frames.byteLength / this.frameBytes;
      this.#ctx.wake();
    });
    this.#writing = write.catch(() => undefined);
    return write;
  }

  /** The run is over: it has the frames pushed so far. Resolves once that is recorded. */
  async end(): Promise<void> {
    this.#ended = true;
    await this.#writing;
    this.#assertLive();
    if (this.#accepted === 0) throw new ArteriaError('RUN_INCOMPLETE', 'the run ended before its first frame');
    this.#ctx.outbox.segments.end(this.entryId, this.#accepted);
    this.#ctx.wake();
  }

  #assertLive(): void {
    const state = this.#ctx.outbox.get(this.entryId)?.state;
    if (state !== 'pending') throw new ArteriaError('INVALID_REQUEST', `the run is ${state ?? 'gone'}; it takes no more frames`);
  }
}
