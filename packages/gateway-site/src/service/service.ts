import { DicomIntake } from '../dimse/intake.js';
import { ResultDelivery } from '../dimse/delivery.js';
import { FolderWatcher, Gateway, type GatewayLogger } from '@arteria/gateway';
import { Lifecycle, type LifecycleState } from '@arteria/protocol';
import type { GatewayServiceConfig } from './service-config.js';

/**
 * The gateway as a long-running service: the Gateway, its DICOM receiver, an optional
 * watched folder, and on-site result delivery, started and closed together.
 */
export class GatewayService {
  readonly gateway: Gateway;
  readonly intake: DicomIntake | undefined;
  readonly delivery: ResultDelivery | undefined;
  readonly watcher: FolderWatcher | undefined;
  readonly #life = new Lifecycle('the gateway service');

  constructor(config: GatewayServiceConfig, logger: GatewayLogger) {
    this.gateway = new Gateway(config.gateway, { logger });
    const outboxPath = this.gateway.config.outboxPath;
    const { dicom, results, watchFolder } = config;
    this.intake = dicom && new DicomIntake(this.gateway, { ...dicom, folder: dicom.folder ?? `${outboxPath}.incoming` }, logger);
    this.delivery =
      results &&
      new ResultDelivery(
        this.gateway,
        {
          folder: results.folder ?? `${outboxPath}.reports`,
          ...(results.node && { node: { host: results.node.host, port: results.node.port, calledAeTitle: results.node.aeTitle, callingAeTitle: dicom?.aeTitle ?? 'ARTERIA', timeoutMs: results.node.timeoutMs } }),
          ...(results.webhookUrl !== undefined && { webhookUrl: results.webhookUrl }),
          ...(results.mqtt !== undefined && { mqtt: results.mqtt }),
          attempts: results.attempts,
          retryDelayMs: results.retryDelayMs,
          redeliverIntervalMs: results.redeliverIntervalMs,
        },
        logger,
      );
    this.watcher = watchFolder && new FolderWatcher(this.gateway, { folder: watchFolder.folder, stableMs: watchFolder.stableMs, logger });
  }

  get state(): LifecycleState {
    return this.#life.state;
  }

  /** Starts the gateway, then delivery, the DICOM receiver and the watched folder; a start that fails closes what it started. */
  start(): Promise<void> {
    return this.#life.start(async () => {
      // Closed last-registered-first: receiver and watcher, then the gateway, then delivery.
      this.#life.defer('on-site delivery', () => this.delivery?.close());
      this.#life.defer('gateway', () => this.gateway.close());
      await this.gateway.start();
      await this.delivery?.start();
      this.#life.defer('watched folder', () => this.watcher?.close());
      this.#life.defer('DICOM receiver', () => this.intake?.close());
      await this.intake?.start();
      await this.watcher?.start();
    });
  }

  /** Closes every part even if one fails, then reports every failure at once (CLOSE_FAILED); memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
