import { ArteriaError, toArteriaError } from '@arteria/protocol';
import type { WorkerPool } from './worker-pool.js';
import type { Replicas, ScaleTarget } from '@arteria/ports';

/** The embedded worker pool as a `ScaleTarget`: resize drains the workers it removes. */
export class WorkerPoolTarget implements ScaleTarget {
  readonly kind = 'local-pool';

  constructor(private readonly pool: WorkerPool) {}

  getReplicas(): Promise<Replicas> {
    return Promise.resolve({ desired: this.pool.size, ready: this.pool.size });
  }

  setReplicas(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 0) return Promise.reject(new ArteriaError('CONFIG_INVALID', `replicas must be a whole number >= 0, got ${count}`));
    try {
      this.pool.resize(count);
    } catch (err) {
      // A pool already closed: the refusal (ILLEGAL_STATE) is the promise's, as for any target.
      return Promise.reject(toArteriaError(err));
    }
    return Promise.resolve();
  }
}
