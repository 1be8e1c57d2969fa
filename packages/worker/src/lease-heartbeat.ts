import { toArteriaError, type ArteriaError } from '@arteria/protocol';
import type { Lease, WorkQueue } from '@arteria/ports';

/**
 * How long this worker surely still holds a lease. A lease or extension asked for at time t
 * keeps the task invisible until at least t + visibility: the queue starts counting when the
 * call reaches it, which is later. Past that bound only the queue can say (`extend`).
 */
export class LeaseHold {
  #since: number;

  constructor(
    askedAt: number,
    readonly visibilityMs: number,
  ) {
    this.#since = askedAt;
  }

  /** An extension asked for at `askedAt` succeeded. */
  extended(askedAt: number): void {
    this.#since = Math.max(this.#since, askedAt);
  }

  /** Milliseconds the lease is held for at least (negative: no longer known to be held). */
  remainingMs(now = Date.now()): number {
    return this.#since + this.visibilityMs - now;
  }
}

/**
 * Extends a lease every third of its visibility while its task is worked on. Only a lost
 * lease (LEASE_LOST: another delivery holds the task now) calls the work off. A failed
 * extension for any other reason (a queue that is briefly unreachable) is reported and the
 * next beat tries again: should the lease run out meanwhile, the next beat or the holder
 * check before publishing finds it lost. Returns the function that stops the beat.
 */
export function startLeaseHeartbeat(queue: WorkQueue, lease: Lease, hold: LeaseHold, work: AbortController, onMissed: (error: ArteriaError) => void): () => void {
  const timer = setInterval(() => {
    const askedAt = Date.now();
    queue.extend(lease, hold.visibilityMs).then(
      () => hold.extended(askedAt),
      (err: unknown) => {
        const error = toArteriaError(err);
        if (error.code === 'LEASE_LOST') work.abort(error);
        else onMissed(error);
      },
    );
  }, Math.max(100, hold.visibilityMs / 3));
  return () => clearInterval(timer);
}

/** Whether work failed because its lease passed to another delivery (then it records and publishes nothing). */
export const lostLease = (error: ArteriaError, signal: AbortSignal): boolean =>
  error.code === 'LEASE_LOST' || (signal.aborted && toArteriaError(signal.reason).code === 'LEASE_LOST');
