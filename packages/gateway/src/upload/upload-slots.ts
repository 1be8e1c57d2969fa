/**
 * The gateway's `uploadConcurrency` upload slots, shared by every upload to the store: a
 * whole-file run takes one per part it sends at once, a segmented run one per segment on
 * its way. Slots freed go first to segments waiting for one (a run being sent while it is
 * acquired, or a large file sent in segments, is waited on frame by frame), then the
 * whole-file uploader is told to look again.
 */
export class UploadSlots {
  readonly #limit: number;
  readonly #queue: { count: number; grant: () => void }[] = [];
  readonly #listeners = new Set<() => void>();
  #inUse = 0;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  get limit(): number {
    return this.#limit;
  }

  get inUse(): number {
    return this.#inUse;
  }

  /**
   * Takes `count` slots (at most the limit) now, or returns undefined: when nobody waits
   * ahead and they are free, or when none is in use at all (a run larger than what is
   * free still goes when the uplink is idle). Returns the function that gives them back.
   */
  tryTake(count: number): (() => void) | undefined {
    const n = Math.min(Math.max(1, count), this.#limit);
    if (this.#queue.length > 0 || (this.#inUse > 0 && n > this.#limit - this.#inUse)) return undefined;
    return this.#grant(n);
  }

  /** Waits, in turn, for `count` slots; resolves with the function that gives them back. */
  async take(count: number, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    const now = this.tryTake(count);
    if (now !== undefined) return now;
    const n = Math.min(Math.max(1, count), this.#limit);
    return new Promise<() => void>((resolve, reject) => {
      const waiter = {
        count: n,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#grant(n));
        },
      };
      const onAbort = (): void => {
        const at = this.#queue.indexOf(waiter);
        if (at >= 0) this.#queue.splice(at, 1);
        reject(signal?.reason as Error);
        this.#serve(); // the next waiter may fit now
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** Called after slots were given back and no queued taker took them all. */
  onFreed(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #grant(n: number): () => void {
    this.#inUse += n;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.#inUse -= n;
      this.#serve();
      for (const listener of [...this.#listeners]) listener();
    };
  }

  #serve(): void {
    for (let next = this.#queue[0]; next !== undefined; next = this.#queue[0]) {
      if (this.#inUse > 0 && next.count > this.#limit - this.#inUse) return;
      this.#queue.shift();
      next.grant();
    }
  }
}
