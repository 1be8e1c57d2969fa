interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout | undefined;
  detach(): void;
}

/**
 * Callers waiting for the result of an outbox entry. Several callers may wait for the
 * same entry (the same file sent twice while the first is on its way).
 */
export class Waiters<T> {
  readonly #byEntry = new Map<string, Set<Waiter<T>>>();

  /**
   * Waits for the entry's outcome. When `signal` aborts, this caller stops waiting and
   * `onAbandoned` runs if nobody else waits for the entry.
   */
  wait(entryId: string, signal: AbortSignal | undefined, onAbandoned: (reason: unknown) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        this.#remove(entryId, waiter);
        // The signal's own reason, exactly as signal.throwIfAborted() would throw it.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        reject(signal?.reason);
        if (!this.has(entryId)) onAbandoned(signal?.reason);
      };
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: undefined,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      let set = this.#byEntry.get(entryId);
      if (set === undefined) {
        set = new Set();
        this.#byEntry.set(entryId, set);
      }
      set.add(waiter);
      // Aborted while the run was being taken: the caller has already given up.
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  has(entryId: string): boolean {
    return (this.#byEntry.get(entryId)?.size ?? 0) > 0;
  }

  resolve(entryId: string, value: T): void {
    for (const waiter of this.#take(entryId)) waiter.resolve(value);
  }

  reject(entryId: string, err: unknown): void {
    for (const waiter of this.#take(entryId)) waiter.reject(err);
  }

  rejectAll(err: unknown): void {
    for (const entryId of [...this.#byEntry.keys()]) this.reject(entryId, err);
  }

  /** Starts a deadline for every waiter of the entry that has none yet. */
  startDeadline(entryId: string, delayMs: number, makeError: () => unknown): void {
    for (const waiter of this.#byEntry.get(entryId) ?? []) {
      if (waiter.timer !== undefined) continue;
      waiter.timer = setTimeout(() => {
        this.#remove(entryId, waiter);
        waiter.reject(makeError());
      }, delayMs);
    }
  }

  #take(entryId: string): Waiter<T>[] {
    const set = this.#byEntry.get(entryId);
    if (set === undefined) return [];
    this.#byEntry.delete(entryId);
    for (const waiter of set) {
      clearTimeout(waiter.timer);
      waiter.detach();
    }
    return [...set];
  }

  #remove(entryId: string, waiter: Waiter<T>): void {
    clearTimeout(waiter.timer);
    waiter.detach();
    const set = this.#byEntry.get(entryId);
    set?.delete(waiter);
    if (set?.size === 0) this.#byEntry.delete(entryId);
  }
}
