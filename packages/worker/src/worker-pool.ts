import { Worker, type WorkerDeps, type WorkerSettings } from './worker.js';
import { ArteriaError } from '@arteria/protocol';

/**
 * The embedded pool of workers: the local `ScaleTarget`. Scaling in drains workers
 * (they finish the task in hand), so no task is cut off mid-way.
 */
export class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly #draining = new Set<Promise<void>>();
  #closed = false;
  readonly #deps: WorkerDeps;
  readonly #settings: WorkerSettings;

  constructor(deps: WorkerDeps, settings: WorkerSettings) {
    this.#deps = deps;
    this.#settings = settings;
  }

  get size(): number {
    return this.#workers.length;
  }

  get busy(): number {
    return this.#workers.filter((w) => w.busy).length;
  }

  /** Grows or shrinks the pool to `count` workers. */
  resize(count: number): void {
    if (this.#closed) throw new ArteriaError('ILLEGAL_STATE', 'worker pool is closed: cannot resize');
    while (this.#workers.length < count) {
      const worker = new Worker(this.#deps, this.#settings);
      worker.start();
      this.#workers.push(worker);
    }
    while (this.#workers.length > count) {
      const worker = this.#workers.pop();
      if (worker) this.#track(worker.drain());
    }
  }

  /** Drains every worker. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const worker of this.#workers.splice(0)) this.#track(worker.drain());
    }
    await Promise.all([...this.#draining]);
  }

  #track(drain: Promise<void>): void {
    this.#draining.add(drain);
    void drain.finally(() => this.#draining.delete(drain));
  }
}
