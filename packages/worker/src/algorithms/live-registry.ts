import type { AlgorithmRegistry } from './registry.js';

/** What consumers of a registry read: resolve a request's `name@range`, list the versions. */
export type AlgorithmCatalog = Pick<AlgorithmRegistry, 'resolve' | 'list'>;

/**
 * The registry a running process answers from, replaced whole when the artifact store
 * changes (a promotion, a retirement, a new shadow plan): each `resolve` reads the
 * registry current at that moment, so a swap is atomic for every request, and a task that
 * already resolved its version keeps running on it (the version's folder is kept until
 * the next start).
 */
export class LiveRegistry implements AlgorithmCatalog {
  #current: AlgorithmRegistry;
  #generation = 0;

  constructor(initial: AlgorithmRegistry) {
    this.#current = initial;
  }

  /** How many times the registry was replaced since start. */
  get generation(): number {
    return this.#generation;
  }

  get current(): AlgorithmRegistry {
    return this.#current;
  }

  resolve(...args: Parameters<AlgorithmRegistry['resolve']>): ReturnType<AlgorithmRegistry['resolve']> {
    return this.#current.resolve(...args);
  }

  list(): ReturnType<AlgorithmRegistry['list']> {
    return this.#current.list();
  }

  /** Every later `resolve` and `list` answers from `next`. */
  swap(next: AlgorithmRegistry): void {
    this.#current = next;
    this.#generation += 1;
  }
}
