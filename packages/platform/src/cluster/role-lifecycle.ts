import { OpsHttpServer, type HttpRoutes, type HttpSecurity, loadOrCreateOpsToken } from '@arteria/operations';
import { ArteriaError } from '@arteria/protocol';
import { Lifecycle, type LifecycleState } from '@arteria/ports';
import { securitySink, type Logger } from '@arteria/telemetry';

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
export type RoleState = LifecycleState;

/**
 * The part every cluster role shares: its lifecycle (`Lifecycle` from ports), its ops HTTP
 * server, and the cleanups of what it started. A role runs its own start-up inside
 * `start()`, registers each thing it opens with `defer()`, and closes with `close()`:
 * drain first (readiness down), then every cleanup, last opened first, even when one
 * throws (CLOSE_FAILED lists them).
 */
export class RoleLifecycle<Drained = void> {
  readonly #life: Lifecycle;
  readonly http = new OpsHttpServer();
  #closing: Promise<Drained> | undefined;

  constructor(name = 'cluster role') {
    this.#life = new Lifecycle(name);
  }

  get state(): RoleState {
    return this.#life.state;
  }

  /** Runs the role's start-up; on failure closes what it opened and rethrows. Then `running`. */
  start(startUp: () => Promise<void>): Promise<void> {
    return this.#life.start(startUp);
  }

  /** Registers the cleanup of something just opened; cleanups run in reverse order. */
  defer(cleanup: () => Promise<void>, label = 'cleanup'): void {
    this.#life.defer(label, cleanup);
  }

  /**
   * Serves /metrics, /healthz, /readyz and /api/status. Ready while running and, where
   * given, while `alsoReady()` holds; closed with the other cleanups. Refused requests
   * are logged as security events by `logger`.
   */
  async serve(routes: Omit<HttpRoutes, 'ready'>, http: OpsHttpConfig, alsoReady: () => boolean = () => true, logger?: Logger): Promise<void> {
    const security = await opsSecurity(http);
    // Refused operator requests go to the process's logger when it has one.
    await this.http.start({ ...routes, ready: () => this.#life.running && alsoReady() }, http.host, http.port, logger ? { ...security, onRefused: securitySink(logger) } : security);
    this.defer(() => this.http.close(), 'ops HTTP server');
  }

  /**
   * Goes `draining` (readiness down, liveness up), runs `drain` (work in hand), then every
   * cleanup, then `closed`. Resolves with what `drain` returned. Idempotent.
   */
  close(drain: () => Promise<Drained>): Promise<Drained> {
    this.#closing ??= (async () => {
      // A drain that fails still lets every cleanup run.
      let outcome: { value: Drained } | { error: unknown };
      try {
        outcome = { value: this.#life.state === 'running' ? await this.#drain(drain) : await drain() };
      } catch (error) {
        outcome = { error };
      }
      await this.#life.close();
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    })();
    return this.#closing;
  }

  async #drain(drain: () => Promise<Drained>): Promise<Drained> {
    let value: Drained | undefined;
    await this.#life.drain(async () => {
      value = await drain();
    });
    return value as Drained;
  }
}
