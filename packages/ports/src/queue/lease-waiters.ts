/**
 * Leasers waiting in this process for work: each sleeps until its timer runs out, its
 * signal aborts, or an enqueue wakes it. Shared by the queue adapters' long polls.
 */
export class LeaseWaiters {
  readonly #waiting = new Set<() => void>();

  /** Leasers waiting now. */
  get size(): number {
    return this.#waiting.size;
  }

  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Wakes up to `limit` waiting leasers, longest waiting first. */
  wake(limit = Infinity): void {
    let woken = 0;
    for (const done of [...this.#waiting]) {
      if (woken++ >= limit) break;
      done();
    }
  }
}
