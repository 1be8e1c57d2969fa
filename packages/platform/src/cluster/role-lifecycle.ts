import { OpsHttpServer, type HttpRoutes, type HttpSecurity } from '../http/http-server.js';
import { loadOrCreateOpsToken } from '../http/ops-auth.js';
import { ArteriaError } from '@arteria/protocol';
import { securitySink, type Logger } from '../log/logger.js';

/** Where a role serves its operations surface, and who may read it. */
export interface OpsHttpConfig {
  host: string;
  port: number;
  /** Empty: {dataDir}/ops-token. */
  token: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  dataDir: string;
}

export async function opsSecurity(http: OpsHttpConfig): Promise<HttpSecurity> {
  if ((http.tlsCertFile === '') !== (http.tlsKeyFile === '')) throw new ArteriaError('CONFIG_INVALID', 'http.tlsCertFile and http.tlsKeyFile: give both or neither');
  const token = http.token !== '' ? http.token : await loadOrCreateOpsToken(http.dataDir);
  return { token, ...(http.tlsCertFile !== '' ? { tls: { certFile: http.tlsCertFile, keyFile: http.tlsKeyFile } } : {}) };
}

/** Lifecycle shared by the cluster roles: readiness follows `running`, liveness the process. */
export type RoleState = 'starting' | 'running' | 'draining' | 'stopped';

/** Runs every cleanup (last started first) even if one throws; rethrows all failures at the end. */
export async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, 'did not stop cleanly');
}

/** Resolves true when `work` settles within `timeoutMs`, false when the time ran out first. */
export async function within(work: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The part every cluster role shares: its state, its ops HTTP server, and the cleanups of
 * what it started. A role runs its own start-up inside `start()`, registers each thing it
 * opens with `defer()`, and closes with `close()`: every cleanup runs, last opened first,
 * even when one throws.
 */
export class RoleLifecycle<Drained = void> {
  #state: RoleState = 'starting';
  readonly http = new OpsHttpServer();
  readonly #cleanups: (() => Promise<void>)[] = [];
  #closing: Promise<Drained> | undefined;

  get state(): RoleState {
    return this.#state;
  }

  /** Runs the role's start-up; on failure closes what it opened and rethrows. Then `running`. */
  async start(startUp: () => Promise<void>): Promise<void> {
    try {
      await startUp();
    } catch (err) {
      await runCleanups(this.#cleanups).catch(() => undefined);
      throw err;
    }
    this.#state = 'running';
  }

  /** Registers the cleanup of something just opened; cleanups run in reverse order. */
  defer(cleanup: () => Promise<void>): void {
    this.#cleanups.push(cleanup);
  }

  /**
   * Serves /metrics, /healthz, /readyz and /api/status. Ready while running and, where
   * given, while `alsoReady()` holds; closed with the other cleanups. Refused requests
   * are logged as security events by `logger`.
   */
  async serve(routes: Omit<HttpRoutes, 'ready'>, http: OpsHttpConfig, alsoReady: () => boolean = () => true, logger?: Logger): Promise<void> {
    const security = await opsSecurity(http);
    // Refused operator requests go to the process's logger when it has one.
    await this.http.start({ ...routes, ready: () => this.#state === 'running' && alsoReady() }, http.host, http.port, logger ? { ...security, onRefused: securitySink(logger) } : security);
    this.defer(() => this.http.close());
  }

  /**
   * Goes `draining` (readiness down, liveness up), runs `drain` (work in hand), then every
   * cleanup, then `stopped`. Resolves with what `drain` returned. Idempotent.
   */
  async close(drain: () => Promise<Drained>): Promise<Drained> {
    this.#closing ??= (async () => {
      this.#state = 'draining';
      try {
        // A drain that fails still lets every cleanup run.
        let outcome: { value: Drained } | { error: unknown };
        try {
          outcome = { value: await drain() };
        } catch (error) {
          outcome = { error };
        }
        await runCleanups(this.#cleanups);
        if ('error' in outcome) throw outcome.error;
        return outcome.value;
      } finally {
        this.#state = 'stopped';
      }
    })();
    return this.#closing;
  }
}
