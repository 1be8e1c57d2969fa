import type { InputRef } from '@arteria/protocol';

export interface FetchOptions {
  maxBytes: number;
  signal?: AbortSignal;
  /**
   * `fetch` only: memory of the caller's to read the input into, when it is exactly the
   * input's size (then the bytes returned are a view of all of it), instead of new memory.
   * A source may ignore it. What it held before is overwritten; on a failure it holds
   * part of the input.
   */
  into?: Uint8Array;
}

/**
 * Where a worker gets a request's input from. Every source returns exactly the bytes the
 * request declared: the size is checked as the bytes arrive and the SHA-256 at the end,
 * failing with INPUT_TOO_LARGE, INPUT_NOT_FOUND, CHECKSUM_MISMATCH or STORAGE_UNAVAILABLE.
 */
export interface InputSource {
  /**
   * The whole input in memory that is the caller's: nothing else keeps or reuses it, so the
   * caller may transfer its buffer to another thread (where the bytes span all of it). In
   * `options.into` when that is the input's size and the source reads into memory given.
   */
  fetch(input: InputRef, options: FetchOptions): Promise<Buffer>;
  /**
   * The input in chunks of about 1 MiB as they are read, each in memory of its own (it can
   * be transferred to another thread), so memory does not grow with the input. The same
   * checks and errors as `fetch`: a wrong size or SHA-256 makes the iteration throw, at the
   * latest in place of its last chunk, which is only yielded once the digest is verified.
   */
  stream(input: InputRef, options: FetchOptions): AsyncIterable<Buffer>;
}
