import type { SegmentRecord } from '../outbox/segment-journal.js';

export interface SegmentUploadsContext {
  /** At most this many segments on their way to the store at once; each holds its bytes until stored. */
  limit: number;
  /** Uploads one segment (its bytes as cut, or read again from the source when not given) and records it uploaded. */
  upload(segment: SegmentRecord, bytes: Buffer | undefined): Promise<void>;
  /** Announces, in index order, every uploaded segment not yet announced, up to the first one not yet uploaded. */
  announce(): Promise<void>;
  /** An upload finished, or an announcement round failed: the run's follower looks again. */
  progressed(): void;
}

/**
 * The segments of one streaming run between their cut and their announcement: up to
 * `limit` uploads at once (so a store or grant round trip slower than the acquisition does
 * not hold the next segments back, and memory stays at `limit` segments), and one
 * announcer that announces them strictly in index order as the uploads complete, in
 * whatever order those finish. The first failure is kept for the follower, which settles
 * everything on its way before it retries.
 */
export class SegmentUploads {
  readonly #ctx: SegmentUploadsContext;
  readonly #inFlight = new Map<number, Promise<void>>();
  #announcing: Promise<void> | undefined;
  #again = false;
  #failure: { error: unknown } | undefined;

  constructor(context: SegmentUploadsContext) {
    this.#ctx = context;
  }

  /** Uploads on their way. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Whether another segment may be cut now. */
  get hasRoom(): boolean {
    return this.#inFlight.size < this.#ctx.limit;
  }

  has(index: number): boolean {
    return this.#inFlight.has(index);
  }

  /** Starts a segment's upload (once per index at a time); the announcer follows when it completes. */
  start(segment: SegmentRecord, bytes?: Buffer): void {
    if (this.#inFlight.has(segment.index)) return;
    const upload = this.#ctx
      .upload(segment, bytes)
      .then(
        () => this.announce(),
        (err: unknown) => this.#fail(err),
      )
      .finally(() => {
        this.#inFlight.delete(segment.index);
        this.#ctx.progressed();
      });
    this.#inFlight.set(segment.index, upload);
  }

  /** Runs the announcer now, or once more after the round it is in. */
  announce(): void {
    if (this.#announcing !== undefined) {
      this.#again = true;
      return;
    }
    this.#announcing = (async () => {
      do {
        this.#again = false;
        await this.#ctx.announce();
      } while (this.#again && this.#failure === undefined);
    })()
      .catch((err: unknown) => {
        this.#fail(err);
        this.#ctx.progressed(); // the follower sees the failure; a round that went well needs nobody woken
      })
      .finally(() => {
        this.#announcing = undefined;
      });
  }

  /** Throws (once) the first failure since the last call. */
  throwIfFailed(): void {
    const failure = this.#failure;
    if (failure === undefined) return;
    this.#failure = undefined;
    throw failure.error;
  }

  /** Resolves once no upload is on its way and the announcer is idle; then throws the first failure, if any. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#announcing !== undefined) {
      await Promise.allSettled([...this.#inFlight.values(), this.#announcing]);
    }
    this.throwIfFailed();
  }

  /** As drain(), and forgets any failure (after an error the follower starts over from the journal). */
  async settle(): Promise<void> {
    await this.drain().catch(() => undefined);
  }

  #fail(err: unknown): void {
    this.#failure ??= { error: err };
  }
}
