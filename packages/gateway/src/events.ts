/**
 * A small typed emitter. Unlike node's EventEmitter, an `error` event without listeners
 * does not throw, and a throwing listener cannot break the gateway: it is reported.
 */
export class TypedEmitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>();
  readonly #onListenerError: (err: unknown, event: keyof Events) => void;

  constructor(onListenerError: (err: unknown, event: keyof Events) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): void {
    this.#listeners.get(event)?.delete(listener);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set] as ((payload: Events[K]) => void)[]) {
      try {
        listener(payload);
      } catch (err) {
        this.#onListenerError(err, event);
      }
    }
  }

  removeAll(): void {
    this.#listeners.clear();
  }
}
