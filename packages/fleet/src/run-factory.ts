import { Worker } from 'node:worker_threads';
import type { RunRecipe } from './run-recipe.js';
import { ArteriaError } from '@arteria/protocol';

type Reply = { id: number; bytes: Uint8Array } | { id: number; error: string };

/** Synthesizes runs in a thread of its own, one at a time, in order. */
export class RunFactory {
  readonly #thread: Worker;
  readonly #pending = new Map<number, { resolve: (bytes: Uint8Array) => void; reject: (err: Error) => void }>();
  #next = 0;
  #closed = false;

  constructor() {
    this.#thread = new Worker(new URL('./run-factory-thread.js', import.meta.url));
    this.#thread.unref();
    this.#thread.on('message', (reply: Reply) => {
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (!waiter) return;
      if ('error' in reply) waiter.reject(new ArteriaError('INTERNAL', `synthesizing a run failed: ${reply.error}`));
      else waiter.resolve(reply.bytes);
    });
    this.#thread.on('error', (err) => this.#failAll(err));
    this.#thread.on('exit', () => this.#failAll(new ArteriaError('INTERNAL', 'the run factory thread stopped')));
  }

  render(recipe: RunRecipe): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new ArteriaError('ILLEGAL_STATE', 'the run factory is closed: cannot make a run'));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#thread.postMessage({ id, recipe });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#thread.terminate();
  }

  #failAll(err: Error): void {
    for (const waiter of this.#pending.values()) waiter.reject(err);
    this.#pending.clear();
  }
}
