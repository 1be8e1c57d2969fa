import { readFile, rename, writeFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { ArteriaError, ConfigV1, decodePayload, epochNow, toArteriaError, type ReportedConfigV1 } from '@arteria/protocol';
import { DeidentificationProfile } from '@arteria/deid';
import { errorFields, type GatewayLogger } from '../log.js';
import { RouteRule, compileRoutes, type RunAttributes } from './routing.js';
import { GATEWAY_VERSION } from '../version.js';

/** A fleet config that passed validation, compiled for use. */
export interface ActiveConfig {
  config: ConfigV1;
  routes: RouteRule[];
  route: (run: RunAttributes) => string[] | undefined;
  /** Undefined: the site's local profile stays in effect. */
  deidentification: DeidentificationProfile | undefined;
}

export interface FleetConfigHooks {
  /** Puts a config (or, with undefined, the local defaults) into effect; throwing makes the manager roll back. */
  apply(next: ActiveConfig | undefined): void;
  /**
   * Proves the gateway still works under the config just applied (connected, and the
   * platform would admit runs sent to every algorithm of `next`); rejecting rolls back,
   * and the error's code is reported.
   */
  confirm(next: ActiveConfig | undefined): Promise<void>;
}

export interface FleetConfigPolicy {
  /** false: the site keeps its own de-identification profile; a config carrying one is refused. */
  acceptDeidentification: boolean;
}

/**
 * Validates a desired config before anything changes: schema, route expressions, routes
 * naming only enabled algorithms, and the de-identification profile (and whether the site
 * takes one from the fleet at all). Throws CONFIG_INVALID.
 */
export function validateFleetConfig(config: ConfigV1, policy: FleetConfigPolicy = { acceptDeidentification: true }): ActiveConfig {
  const fail = (message: string, cause?: unknown): never => {
    throw new ArteriaError('CONFIG_INVALID', `config version ${config.version}: ${message}`, { cause });
  };
  const routes: RouteRule[] = (config.routes ?? []).map((raw, i) => {
    const parsed = RouteRule.safeParse(raw);
    if (!parsed.success) return fail(`routes.${i}.${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    for (const algorithm of parsed.data.algorithms) {
      if (!config.algorithms.includes(algorithm)) fail(`routes.${i} names ${algorithm}, which is not among the enabled algorithms`);
    }
    return parsed.data;
  });
  let route: ActiveConfig['route'];
  try {
    route = compileRoutes(routes);
  } catch (err) {
    return fail(`a route expression does not compile: ${(err as Error).message}`, err);
  }
  let deidentification: DeidentificationProfile | undefined;
  if (config.deidentification !== undefined) {
    if (!policy.acceptDeidentification) {
      fail('this site does not take a de-identification profile from the fleet config (deidentification.remoteProfile: refuse); remove it from the config or change it on-site');
    }
    const parsed = DeidentificationProfile.safeParse(config.deidentification);
    if (!parsed.success) fail(`deidentification.${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    deidentification = parsed.data;
  }
  return { config, routes, route, deidentification };
}

/**
 * Keeps the gateway's fleet config: validates each desired version before applying it,
 * applies it as one step, confirms the gateway still works, and otherwise rolls back to
 * the previous one. The last good config is kept on disk so a restart (or a site without
 * network) starts with it. Every offer yields the report to publish.
 */
export class FleetConfigManager {
  readonly #statePath: string;
  readonly #hooks: FleetConfigHooks;
  readonly #logger: GatewayLogger;
  readonly #policy: FleetConfigPolicy;
  #active: ActiveConfig | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(statePath: string, hooks: FleetConfigHooks, logger: GatewayLogger, policy: FleetConfigPolicy = { acceptDeidentification: true }) {
    this.#statePath = statePath;
    this.#hooks = hooks;
    this.#logger = logger;
    this.#policy = policy;
  }

  get active(): ActiveConfig | undefined {
    return this.#active;
  }

  /** Applies the last good config saved on disk, if any. */
  async restore(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      const next = validateFleetConfig(decodePayload(ConfigV1, Buffer.from(text)), this.#policy);
      this.#hooks.apply(next);
      this.#active = next;
    } catch (err) {
      this.#logger.error('the saved fleet config is not usable; starting with local defaults', { path: this.#statePath, ...errorFields(err) });
    }
  }

  /** Handles one message from the config topic; offers are processed one at a time, in order. */
  offer(payload: Buffer): Promise<ReportedConfigV1 | undefined> {
    const next = this.#queue.then(() => this.#offer(payload));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** The report for the config in effect; a refusal carries the error's message and code. */
  report(version: number, applied: boolean, error?: ArteriaError, prefix = ''): ReportedConfigV1 {
    const active = this.#active?.config;
    return {
      v: 1,
      version,
      applied,
      ...(error === undefined ? {} : { error: `${prefix}${error.message}`.slice(0, 2000), code: error.code }),
      ...(active === undefined ? {} : { activeVersion: active.version, active: { ...active } }),
      gatewayVersion: GATEWAY_VERSION,
      at: epochNow(),
    };
  }

  async #offer(payload: Buffer): Promise<ReportedConfigV1 | undefined> {
    if (payload.length === 0) return undefined; // the retained config was cleared: keep what is in effect
    let desired: ConfigV1;
    try {
      desired = decodePayload(ConfigV1, payload);
    } catch (err) {
      // Every refusal is reported, even of bytes that are not JSON (version 0: none could be read).
      const error = toArteriaError(err);
      const typed = error.code === 'INVALID_REQUEST' ? new ArteriaError('CONFIG_INVALID', error.message, { cause: err }) : error;
      this.#logger.warn('refused an invalid fleet config', errorFields(typed));
      return this.report(claimedVersion(payload) ?? 0, false, typed);
    }
    const current = this.#active;
    if (current !== undefined && desired.version === current.config.version) {
      if (isDeepStrictEqual(desired, current.config)) return this.report(desired.version, true); // redelivered
      return this.report(desired.version, false, new ArteriaError('CONFIG_STALE', `version ${desired.version} is already in effect with other content; a changed config needs a new version`));
    }
    if (current !== undefined && desired.version < current.config.version) {
      return this.report(desired.version, false, new ArteriaError('CONFIG_STALE', `version ${desired.version} is older than the active version ${current.config.version}`));
    }
    let next: ActiveConfig;
    try {
      next = validateFleetConfig(desired, this.#policy);
    } catch (err) {
      this.#logger.warn('rejected a fleet config before applying it', errorFields(err));
      return this.report(desired.version, false, toArteriaError(err, 'CONFIG_INVALID'));
    }
    try {
      this.#hooks.apply(next);
      this.#active = next;
      await this.#hooks.confirm(next);
      await this.#save(desired);
    } catch (err) {
      this.#logger.error('a fleet config failed to apply; rolled back', { version: desired.version, ...errorFields(err) });
      this.#active = current;
      try {
        this.#hooks.apply(current);
      } catch (rollbackError) {
        this.#logger.error('rolling back the fleet config failed', errorFields(rollbackError));
      }
      return this.report(desired.version, false, err instanceof ArteriaError ? err : new ArteriaError('CONFIG_UNCONFIRMED', (err as Error).message, { cause: err }), 'rolled back: ');
    }
    this.#logger.info('applied fleet config', { version: desired.version });
    return this.report(desired.version, true);
  }

  async #save(config: ConfigV1): Promise<void> {
    const temporary = `${this.#statePath}.tmp`;
    await writeFile(temporary, JSON.stringify(config));
    await rename(temporary, this.#statePath);
  }
}

/** The version a config payload claims, even when the rest of it is invalid (to report the failure). */
function claimedVersion(payload: Buffer): number | undefined {
  try {
    const raw: unknown = JSON.parse(payload.toString('utf8'));
    const version = (raw as { version?: unknown } | null)?.version;
    return typeof version === 'number' && Number.isInteger(version) && version >= 0 ? version : undefined;
  } catch {
    return undefined; // not JSON: no version to report against
  }
}
