import { ArteriaError } from '@arteria/protocol';
import { AdmissionProbes } from '../connection/admission-probe.js';
import type { BandwidthLimiter } from '../upload/bandwidth.js';
import type { GatewayConfig } from './config.js';
import { FleetConfigManager, type ActiveConfig } from './config-manager.js';
import type { DeviceConnection } from '../connection/connection.js';
import type { DeidentificationProfile } from '@arteria/deid';
import type { TypedEmitter } from '../events.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { RunAttributes } from './routing.js';
import type { GatewayEvents } from '../types.js';

export interface FleetLinkContext {
  config: GatewayConfig;
  connection: DeviceConnection;
  limiter: BandwidthLimiter;
  events: TypedEmitter<GatewayEvents>;
  logger: GatewayLogger;
  lifetime: AbortSignal;
}

/**
 * The device's fleet config: takes the config topic, puts a pushed config into effect
 * (upload rate, segment encoding, default algorithm, de-identification profile), proves it
 * works (still connected, and the platform would admit every algorithm: a dry-run probe)
 * or rolls it back, and reports the outcome.
 */
export class FleetLink {
  readonly #ctx: FleetLinkContext;
  readonly #manager: FleetConfigManager;
  /** Answers to its probes come back among the results: the result intake hands them here. */
  readonly probes: AdmissionProbes;
  #algorithm: string | undefined;
  #profile: DeidentificationProfile;
  #segmentEncoding: GatewayConfig['segmentEncoding'];

  constructor(context: FleetLinkContext) {
    this.#ctx = context;
    const { config, connection, logger } = context;
    this.#profile = config.deidentification.profile;
    this.#segmentEncoding = config.segmentEncoding;
    this.probes = new AdmissionProbes((payload) => connection.publishRequest(payload));
    this.#manager = new FleetConfigManager(`${config.outboxPath}.config.json`, { apply: (next) => this.#apply(next), confirm: (next) => this.#confirm(next) }, logger, {
      acceptDeidentification: config.deidentification.remoteProfile === 'accept',
    });
    connection.handle('config', (payload) => this.#offer(payload));
  }

  /** Puts the last good config back into effect (at start, before anything is sent). */
  restore(): Promise<void> {
    return this.#manager.restore();
  }

  get active(): ActiveConfig | undefined {
    return this.#manager.active;
  }

  /** The algorithm a run goes to unless its sender names one: the fleet config's first, else the `algorithm` option. */
  get algorithm(): string {
    return this.#algorithm ?? this.#ctx.config.algorithm;
  }

  get deidentificationProfile(): DeidentificationProfile {
    return this.#profile;
  }

  /** How segments cut from now on go up: the fleet config's setting, else the `segmentEncoding` option. */
  get segmentEncoding(): GatewayConfig['segmentEncoding'] {
    return this.#segmentEncoding;
  }

  /** The algorithms a run goes to: the first matching route, else the default algorithm. */
  route(run: RunAttributes): string[] {
    return this.#manager.active?.route(run) ?? [this.algorithm];
  }

  #offer(payload: Buffer): void {
    const { connection, events, logger } = this.#ctx;
    this.#manager
      .offer(payload)
      .then(async (report) => {
        if (report === undefined) return;
        const active = this.#manager.active;
        if (report.applied && active !== undefined) events.emit('config', { config: active.config });
        await connection.publishReported(report);
      })
      .catch((err: unknown) => logger.warn('could not report the fleet config', errorFields(err)));
  }

  /** Puts a fleet config into effect (undefined: the local options). Synchronous: nothing half-applied. */
  #apply(next: ActiveConfig | undefined): void {
    const { config, limiter } = this.#ctx;
    limiter.setRate(next?.config.uploadBandwidthBytesPerSecond ?? config.uploadBandwidthBytesPerSecond);
    this.#algorithm = next?.config.algorithms[0];
    this.#profile = next?.deidentification ?? config.deidentification.profile;
    this.#segmentEncoding = next?.config.segmentEncoding ?? config.segmentEncoding;
  }

  /**
   * Proves a config just applied works before it is kept: connected to the broker, the
   * platform would admit runs sent to each of its algorithms for this device (a dry-run
   * probe, nothing queued), and still connected after the answer.
   */
  async #confirm(next: ActiveConfig | undefined): Promise<void> {
    const { config, logger } = this.#ctx;
    await this.#connected();
    const algorithms = next?.config.algorithms ?? [];
    if (algorithms.length === 0) return;
    const versions = await this.probes.check(algorithms, config.configConfirmTimeoutMs);
    await this.#connected();
    logger.info('the platform admits every algorithm of the new config', { version: next?.config.version, versions: Object.fromEntries(versions) });
  }

  /** Resolves once the gateway is connected to its broker; rejects after configConfirmTimeoutMs. */
  async #connected(): Promise<void> {
    const { config, connection, lifetime } = this.#ctx;
    const deadline = performance.now() + config.configConfirmTimeoutMs;
    while (connection.state !== 'ready') {
      if (performance.now() >= deadline || lifetime.aborted) {
        throw new ArteriaError('CONFIG_UNCONFIRMED', `not connected to the broker within ${config.configConfirmTimeoutMs} ms of applying the config`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
