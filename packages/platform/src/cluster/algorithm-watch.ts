import { Lifecycle, toArteriaError, type LifecycleState } from '@arteria/protocol';
import type { LiveRegistry } from '@arteria/worker';
import type { ClusterConfig } from './cluster-config.js';
import { artifactStoreClient, loadRoleAlgorithms, storeFingerprint, type RoleAlgorithms } from './role-algorithms.js';

export interface AlgorithmWatchHooks {
  /** The registry was swapped; `next` is what was loaded (a worker updates its shadow plans from it). */
  onChange?: (next: RoleAlgorithms) => void;
  /** A poll failed (store unreachable, a refused version): the process keeps what it runs. */
  onError: (error: Error) => void;
}

/**
 * Keeps a running worker or ingest process in step with the artifact store: every
 * `algorithms.storePollMs` it reads the release records (and, for a worker, the shadow
 * plans); when they changed, it fetches and checks the versions now wanted exactly as at
 * start and swaps the registry whole. A version refused now (a bad signature, an edited
 * record) is reported and the process goes on with the registry it has, where at start it
 * would not have started. Versions dropped stay on disk until the next start, so a task
 * that resolved one before the swap finishes on it.
 */
export class AlgorithmStoreWatch implements AsyncDisposable {
  readonly #config: Readonly<ClusterConfig>;
  readonly #role: 'worker' | 'ingest';
  readonly #dirs: readonly string[];
  readonly #live: LiveRegistry;
  readonly #hooks: AlgorithmWatchHooks;
  #fingerprint: string;
  #timer: NodeJS.Timeout | undefined;
  #inCheck: Promise<boolean> | undefined;
  readonly #life = new Lifecycle('algorithm store watch');

  private constructor(config: Readonly<ClusterConfig>, role: 'worker' | 'ingest', dirs: readonly string[], live: LiveRegistry, loaded: RoleAlgorithms, hooks: AlgorithmWatchHooks) {
    this.#config = config;
    this.#role = role;
    this.#dirs = dirs;
    this.#live = live;
    this.#hooks = hooks;
    this.#fingerprint = loaded.fingerprint;
    this.#life.defer('polling', async () => {
      if (this.#timer) clearTimeout(this.#timer);
      // A failure of that check was reported to whoever awaited it (the poll reports its own).
      await this.#inCheck?.then(
        () => undefined,
        () => undefined,
      );
    });
    this.#life.begin();
  }

  /** Watches where the process reads the store and polling is on; undefined otherwise. */
  static start(config: Readonly<ClusterConfig>, role: 'worker' | 'ingest', dirs: readonly string[], live: LiveRegistry, loaded: RoleAlgorithms, hooks: AlgorithmWatchHooks): AlgorithmStoreWatch | undefined {
    if (!config.algorithms.fromStore || config.algorithms.storePollMs === 0) return undefined;
    const watch = new AlgorithmStoreWatch(config, role, dirs, live, loaded, hooks);
    watch.#schedule();
    return watch;
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** Reads the store now; true when the registry was swapped. One check at a time; ILLEGAL_STATE once closed. */
  check(): Promise<boolean> {
    if (!this.#life.running) return Promise.reject(this.#life.illegal('check the store'));
    this.#inCheck ??= this.#check().finally(() => (this.#inCheck = undefined));
    return this.#inCheck;
  }

  async #check(): Promise<boolean> {
    const { store, close } = artifactStoreClient(this.#config);
    let fingerprint: string;
    try {
      fingerprint = await storeFingerprint(store, this.#role);
    } finally {
      close();
    }
    if (fingerprint === this.#fingerprint || !this.#life.running) return false;
    // Whatever the outcome, this state of the store was judged: a refused version is
    // reported once, not at every poll; the next change to the store is looked at again.
    this.#fingerprint = fingerprint;
    const next = await loadRoleAlgorithms(this.#config, this.#role, this.#dirs, { prune: false });
    if (!this.#life.running) return false;
    this.#live.swap(next.registry);
    this.#fingerprint = next.fingerprint;
    this.#hooks.onChange?.(next);
    return true;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.check()
        .catch((err: unknown) => this.#hooks.onError(toArteriaError(err)))
        .finally(() => {
          if (this.#life.running) this.#schedule();
        });
    }, this.#config.algorithms.storePollMs);
  }

  /** Stops polling and waits for a check in progress; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
