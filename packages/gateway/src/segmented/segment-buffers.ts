/**
 * Memory for a run's segments between their cut and their upload, used again from one
 * segment to the next. A segment read into fresh memory paid for the page faults of all of
 * it (about 35 ms of CPU for 16 MiB on a virtual machine, ten times the read itself, plus
 * the garbage collections that freeing it brought); a buffer whose upload is done is taken
 * again by the next cut. At most `limit` spare buffers are kept (a run has at most
 * uploadConcurrency segments on their way), each the size of the largest segment it held.
 */
export class SegmentBuffers {
  readonly #limit: number;
  readonly #spare: Buffer[] = [];
  /** The allocations this pool made: only these come back to it. */
  readonly #own = new WeakSet<ArrayBufferLike>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** `length` bytes of memory (their content undefined), a view of a spare buffer when one is large enough. */
  take(length: number): Buffer {
    const spare = this.#spare.pop();
    if (spare !== undefined && spare.length >= length) return spare.subarray(0, length);
    // Never Node's shared pool (allocUnsafe's, for small sizes): a buffer here is written again after its segment went up.
    const fresh = Buffer.allocUnsafeSlow(length);
    this.#own.add(fresh.buffer);
    return fresh;
  }

  /**
   * Memory taken here that nothing reads any more (its segment is stored: the store answered
   * after the last byte). Not given back after a failed upload, whose request may still
   * hold it.
   */
  give(bytes: Buffer): void {
    if (!this.#own.has(bytes.buffer) || this.#spare.length >= this.#limit) return;
    this.#spare.push(Buffer.from(bytes.buffer));
  }
}
