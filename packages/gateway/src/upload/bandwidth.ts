import { ArteriaError } from '@arteria/protocol';

const SLICE = 64 * 1024;

/**
 * A token bucket shared by every upload of a gateway: caps the bytes per second read
 * into uploads (so a multi-GB run does not saturate the hospital's uplink). The rate
 * can change at any time (fleet config); undefined means no cap.
 */
export class BandwidthLimiter {
  #bytesPerSecond: number | undefined;
  #tokens = 0;
  #last = performance.now();
  /** The waiters, in the order they asked: each takes its bytes once those before it have. */
  #queue: Promise<void> = Promise.resolve();
  /**
   * One abort listener per signal, however many waiters share it: the parts of one upload all
   * wait under its signal, and a listener each would pass the signal's listener limit (and
   * print a memory-leak warning) under a low cap.
   */
  readonly #aborts = new Map<AbortSignal, { listener: () => void; waiters: Set<(reason: Error) => void> }>();

  constructor(bytesPerSecond?: number) {
    this.setRate(bytesPerSecond);
    this.#tokens = bytesPerSecond ?? 0; // the first second's worth goes at once
  }

  get bytesPerSecond(): number | undefined {
    return this.#bytesPerSecond;
  }

  setRate(bytesPerSecond: number | undefined): void {
    if (bytesPerSecond !== undefined && !(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) throw new ArteriaError('CONFIG_INVALID', `bytesPerSecond must be > 0, got ${bytesPerSecond}`);
    this.#bytesPerSecond = bytesPerSecond;
    this.#tokens = Math.min(this.#tokens, bytesPerSecond ?? 0);
    this.#last = performance.now();
  }

  /** Resolves once `bytes` may be sent, taken in 64 KiB slices so an upload waits for the cap without a burst of one whole object's debt. */
  async takeSliced(bytes: number, signal?: AbortSignal): Promise<void> {
    for (let done = 0; done < bytes && this.#bytesPerSecond !== undefined; done += SLICE) await this.take(Math.min(SLICE, bytes - done), signal);
  }

  /**
   * Resolves once `bytes` may be sent; bursts are at most one second of the rate. Callers are
   * served in the order they asked: one that asked first is never overtaken by a smaller
   * request that fits sooner. Segments are announced in order, so a first segment left
   * waiting behind the others would hold back every announcement until the whole run was up.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.#bytesPerSecond === undefined) return Promise.resolve();
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const turn = this.#queue.then(() => this.#takeWhenDue(bytes, signal));
    this.#queue = turn.catch(() => undefined); // an aborted waiter leaves the line to the next
    return signal === undefined ? turn : this.#abortable(turn, signal);
  }

  /** `turn`, or the signal's reason as soon as it aborts (the turn then settles on its own, unheard). */
  #abortable(turn: Promise<void>, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const leave = this.#onAbort(signal, reject);
      void turn.finally(leave).then(resolve, reject);
    });
  }

  /** Calls `reject` with the signal's reason when it aborts, until the returned function is called. */
  #onAbort(signal: AbortSignal, reject: (reason: Error) => void): () => void {
    let entry = this.#aborts.get(signal);
    if (entry === undefined) {
      const waiters = new Set<(reason: Error) => void>();
      const listener = (): void => {
        this.#aborts.delete(signal);
        for (const waiter of waiters) waiter(signal.reason as Error);
      };
      entry = { listener, waiters };
      this.#aborts.set(signal, entry);
      signal.addEventListener('abort', listener, { once: true });
    }
    const { waiters, listener } = entry;
    waiters.add(reject);
    return () => {
      waiters.delete(reject);
      if (waiters.size === 0 && this.#aborts.get(signal)?.waiters === waiters) {
        this.#aborts.delete(signal);
        signal.removeEventListener('abort', listener);
      }
    };
  }

  async #takeWhenDue(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const rate = this.#bytesPerSecond;
      if (rate === undefined) return;
      const now = performance.now();
      this.#tokens = Math.min(rate, this.#tokens + ((now - this.#last) / 1000) * rate);
      this.#last = now;
      // A chunk bigger than the bucket may go once the bucket is full (it then runs into debt).
      if (this.#tokens >= Math.min(bytes, rate)) {
        this.#tokens -= bytes;
        return;
      }
      const waitMs = ((Math.min(bytes, rate) - this.#tokens) / rate) * 1000;
      await new Promise<void>((resolve, reject) => {
        const leave = signal === undefined ? undefined : this.#onAbort(signal, (reason) => {
          clearTimeout(timer);
          reject(reason);
        });
        const timer = setTimeout(() => {
          leave?.();
          resolve();
        }, Math.max(1, waitMs));
      });
    }
  }
}
