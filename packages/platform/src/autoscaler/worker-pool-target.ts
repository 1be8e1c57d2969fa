import type { WorkerPool } from '../worker/worker-pool.js';
import type { Replicas, ScaleTarget } from './scale-target.js';

/** The embedded worker pool as a `ScaleTarget`: resize drains the workers it removes. */
export class WorkerPoolTarget implements ScaleTarget {
  readonly kind = 'local-pool';

  constructor(private readonly pool: WorkerPool) {}

  getReplicas(): Promise<Replicas> {
    return Promise.resolve({ desired: this.pool.size, ready: this.pool.size });
  }

  setReplicas(count: number): Promise<void> {
    this.pool.resize(count);
    return Promise.resolve();
  }
}
