import type { TaskMessage } from './sandbox-messages.js';

/** Bytes of a streamed task's chunks in flight to its thread, at most: what bounds the thread's queue. */
export const STREAM_WINDOW_BYTES = 8 << 20;

/** A streamed input: its chunks in order, and how many bytes they make (already checked against the request). */
export interface StreamSource {
  chunks: AsyncIterable<Uint8Array>;
  size: number;
}

export interface FeedHooks {
  post(message: TaskMessage, transfer?: ArrayBuffer[]): void;
  /** The window is full (true) or has room again (false): the host is waiting on the thread. */
  waiting(on: boolean): void;
  /** Every chunk was sent. */
  ended(): void;
}

/** The bytes as a whole ArrayBuffer that may be transferred: copied when a view on a larger, shared or pooled buffer. */
export function ownedBuffer(bytes: Uint8Array): ArrayBuffer {
  const buffer = bytes.buffer;
  if (buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength) return buffer;
  return new Uint8Array(bytes).buffer;
}

/**
 * The host's side of a streamed task: reads the source to its end, so its checks (size,
 * SHA-256) always run, and passes each chunk to the thread while the thread takes them,
 * keeping at most STREAM_WINDOW_BYTES in flight. Once the thread has answered, the rest
 * of the source is still read, only for its checks.
 */
export class StreamFeed {
  readonly #source: StreamSource;
  readonly #hooks: FeedHooks;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  #detached = false;
  #stopped = false;
  /** `begin` was posted: the thread has the task. */
  #begun = false;
  #requireDeidentified = true;

  constructor(source: StreamSource, hooks: FeedHooks) {
    this.#source = source;
    this.#hooks = hooks;
  }

  /** The thread returned `bytes` of chunks' worth of credit. */
  credit(bytes: number): void {
    this.#inFlight -= bytes;
    this.#signal();
  }

  /** The thread has answered: chunks are no longer sent to it. */
  detach(): void {
    this.#detached = true;
    this.#signal();
  }

  /** The task is settled: stop reading the source. */
  stop(): void {
    this.#stopped = true;
    this.#signal();
  }

  /** The source failed its checks: the thread drops the task. */
  abandon(id: number): void {
    // Not begun: the thread gets the task only to drop it, and answers for it as for any abandoned input.
    if (!this.#detached && !this.#begun) this.#begin(id, undefined, false);
    if (!this.#detached) this.#hooks.post({ type: 'end', id, abandoned: true });
    this.#detached = true;
    this.#signal();
  }

  /**
   * Resolves when the source is read to its end; rejects with the source's error. The
   * first chunk travels with `begin`, and an input read in one chunk ends there too: a
   * small input is one message to the thread (and none back) instead of begin, chunk, end
   * and a credit, each of which wakes the other side.
   */
  async run(id: number, requireDeidentified: boolean): Promise<void> {
    this.#requireDeidentified = requireDeidentified;
    let first: ArrayBuffer | undefined;
    for await (const chunk of this.#source.chunks) {
      while (this.#begun && !this.#detached && !this.#stopped && this.#inFlight >= STREAM_WINDOW_BYTES) {
        this.#hooks.waiting(true);
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
      if (this.#stopped) return;
      if (this.#detached) continue;
      this.#hooks.waiting(false);
      const buffer = ownedBuffer(chunk);
      this.#inFlight += buffer.byteLength;
      if (!this.#begun) {
        if (first === undefined) {
          first = buffer; // held until the next chunk or the end
          continue;
        }
        this.#begin(id, first, false);
      }
      this.#hooks.post({ type: 'chunk', id, bytes: buffer }, [buffer]);
    }
    if (this.#detached || this.#stopped) return;
    if (this.#begun) this.#hooks.post({ type: 'end', id, abandoned: false });
    else this.#begin(id, first, true);
    this.#hooks.ended();
  }

  #begin(id: number, first: ArrayBuffer | undefined, ended: boolean): void {
    this.#begun = true;
    const begin: TaskMessage = { type: 'begin', id, size: this.#source.size, requireDeidentified: this.#requireDeidentified, ended, ...(first === undefined ? {} : { bytes: first }) };
    this.#hooks.post(begin, first === undefined ? undefined : [first]);
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
