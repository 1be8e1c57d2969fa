import { ArteriaError, closeFailed } from './errors.js';

/**
 * The states every long-lived part of Arteria goes through. `draining` is optional: a part
 * that holds work in hand (a worker pool, a role) finishes it before it closes.
 */
export type LifecycleState = 'new' | 'starting' | 'running' | 'draining' | 'closing' | 'closed';

type Cleanup = { label: string; run: () => Promise<void> | void };

/**
 * One lifecycle for every long-lived part: gateway, embedded platform, cluster roles,
 * runner, fleet, stores, autoscaler. A part starts once; what it opens while starting is
 * registered with `defer()` and closed last-opened-first by `close()`, which runs every
 * step even when one fails and reports all failures at once (CLOSE_FAILED). A start that
 * throws closes what it had opened. `close()` and `drain()` are memoised: concurrent or
 * repeated calls share one outcome. Misuse is a typed ILLEGAL_STATE error, never a plain
 * `Error`. `await using part = ...` closes it at the end of a scope.
 */
export class Lifecycle implements AsyncDisposable {
  readonly name: string;
  #state: LifecycleState = 'new';
  readonly #cleanups: Cleanup[] = [];
  #closing: Promise<void> | undefined;
  #draining: Promise<void> | undefined;
  readonly #listeners = new Set<(state: LifecycleState) => void>();

  constructor(name: string) {
    this.name = name;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** Called with each new state; returns the unsubscribe function. */
  onChange(listener: (state: LifecycleState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs `work` as the start-up: `running` after it resolves; on a throw, everything deferred so far is closed and the error rethrown. */
  async start(work: () => Promise<void> | void): Promise<void> {
    this.#require('start', 'new');
    this.#set('starting');
    try {
      await work();
    } catch (err) {
      await this.close().catch(() => undefined);
      throw err;
    }
    if (this.#state !== 'starting') throw this.illegal('finish starting');
    this.#set('running');
  }

  /**
   * For a part that is ready once constructed (nothing to await): `running` at once. What
   * its constructor opened is registered with `defer()` before or after.
   */
  begin(): void {
    this.#require('begin', 'new');
    this.#set('starting');
    this.#set('running');
  }

  /** Registers what has just been opened; closed in reverse order of registration. */
  defer(label: string, cleanup: () => Promise<void> | void): void {
    if (this.#state === 'closing' || this.#state === 'closed') throw this.illegal(`open ${label}`);
    this.#cleanups.push({ label, run: cleanup });
  }

  /** Throws ILLEGAL_STATE unless the part is running (or draining, when `allowDraining`). */
  assertRunning(operation: string, allowDraining = false): void {
    if (this.#state === 'running' || (allowDraining && this.#state === 'draining')) return;
    throw this.illegal(operation);
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** Stops taking new work and finishes what is in hand (`work`); memoised. Only from `running`. */
  drain(work: () => Promise<void> | void = () => undefined): Promise<void> {
    if (this.#draining !== undefined) return this.#draining;
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.resolve();
    this.#require('drain', 'running');
    this.#set('draining');
    this.#draining = Promise.resolve().then(work);
    return this.#draining;
  }

  /**
   * Drains (running: with `work`; already draining: waits for that drain), then closes:
   * what a part that holds work in hand does on close. Memoised through drain() and close().
   */
  async drainAndClose(work: () => Promise<void> | void = () => undefined): Promise<void> {
    if (this.#state === 'running' || this.#state === 'draining') await this.drain(work);
    await this.close();
  }

  /** Closes everything deferred, last first, every step even when one fails; memoised. */
  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The typed error for `operation` in the current state. */
  illegal(operation: string): ArteriaError {
    return new ArteriaError('ILLEGAL_STATE', `${this.name} is ${this.#state}: cannot ${operation}`);
  }

  async #closeAll(): Promise<void> {
    if (this.#state === 'new') {
      this.#set('closed');
      return;
    }
    this.#set('closing');
    const failures: { label: string; error: unknown }[] = [];
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await cleanup.run();
      } catch (error) {
        failures.push({ label: cleanup.label, error });
      }
    }
    this.#set('closed');
    if (failures.length > 0) {
      throw closeFailed(this.name, failures.map((f) => (f.error instanceof Error ? Object.assign(new Error(`${f.label}: ${f.error.message}`), { cause: f.error }) : `${f.label}: ${String(f.error)}`)));
    }
  }

  #require(operation: string, ...states: LifecycleState[]): void {
    if (!states.includes(this.#state)) throw this.illegal(operation);
  }

  #set(state: LifecycleState): void {
    this.#state = state;
    for (const listener of this.#listeners) listener(state);
  }
}
