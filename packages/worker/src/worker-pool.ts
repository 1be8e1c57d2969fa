import { Worker, type WorkerDeps, type WorkerSettings } from './worker.js';
import { Lifecycle, type LifecycleState } from '@arteria/protocol';

/**
 * The embedded pool of workers: the local `ScaleTarget`. Scaling in drains workers
 * (they finish the task in hand), so no task is cut off mid-way; closing drains them all.
 */
export class WorkerPool implements AsyncDisposable {
  readonly #life = new Lifecycle('worker pool');
  readonly #workers: Worker[] = [];
  readonly #draining = new Set<Promise<void>>();
  readonly #deps: WorkerDeps;
  readonly #settings: WorkerSettings;

  constructor(deps: WorkerDeps, settings: WorkerSettings) {
    this.#deps = deps;
    this.#settings = settings;
    this.#life.defer('workers', () => this.#drainAll());
    this.#life.begin();
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  get size(): number {
    return this.#workers.length;
  }

  get busy(): number {
    return this.#workers.filter((w) => w.busy).length;
  }

  /** Grows or shrinks the pool to `count` workers (ILLEGAL_STATE once draining or closed). */
  resize(count: number): void {
    this.#life.assertRunning('resize');
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

  /** Stops every worker leasing and waits for the tasks in hand, then closes; memoised. */
  drain(): Promise<void> {
    return this.#life.drainAndClose(() => this.#drainAll());
  }

  /** Drains every worker (none is cut off mid-task); memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #drainAll(): Promise<void> {
    for (const worker of this.#workers.splice(0)) this.#track(worker.drain());
    await Promise.all([...this.#draining]);
  }

  #track(drain: Promise<void>): void {
    this.#draining.add(drain);
    void drain.finally(() => this.#draining.delete(drain));
  }
}
