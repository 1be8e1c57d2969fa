import { toArteriaError, type ArteriaError } from '@arteria/protocol';
import type { Lease, WorkQueue } from '@arteria/ports';

/**
 * Extends a lease every third of its visibility while its task is worked on. Only a lost
 * lease (LEASE_LOST: another delivery holds the task now) calls the work off. A failed
 * extension for any other reason (a queue that is briefly unreachable) is reported and the
 * next beat tries again: should the lease run out meanwhile, the next beat or the holder
 * check before publishing finds it lost. Returns the function that stops the beat.
 */
export function startLeaseHeartbeat(queue: WorkQueue, lease: Lease, visibilityMs: number, work: AbortController, onMissed: (error: ArteriaError) => void): () => void {
  const timer = setInterval(() => {
    queue.extend(lease, visibilityMs).catch((err: unknown) => {
      const error = toArteriaError(err);
      if (error.code === 'LEASE_LOST') work.abort(error);
      else onMissed(error);
    });
  }, Math.max(100, visibilityMs / 3));
  return () => clearInterval(timer);
}

/** Whether work failed because its lease passed to another delivery (then it records and publishes nothing). */
export const lostLease = (error: ArteriaError, signal: AbortSignal): boolean =>
  error.code === 'LEASE_LOST' || (signal.aborted && toArteriaError(signal.reason).code === 'LEASE_LOST');
