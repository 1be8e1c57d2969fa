import { DicomIntake } from '../dimse/intake.js';
import { ResultDelivery } from '../dimse/delivery.js';
import { Gateway } from '../gateway.js';
import { errorFields, type GatewayLogger } from '../log.js';
import { FolderWatcher } from '../watch.js';
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
  readonly #logger: GatewayLogger;
  #closing: Promise<void> | undefined;

  constructor(config: GatewayServiceConfig, logger: GatewayLogger) {
    this.#logger = logger;
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

  async start(): Promise<void> {
    await this.gateway.start();
    await this.delivery?.start();
    await this.intake?.start();
    await this.watcher?.start();
  }

  /** Closes every part even if one fails. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const step of [() => this.intake?.close(), () => this.watcher?.close(), () => this.gateway.close(), () => this.delivery?.close()]) {
        try {
          await step();
        } catch (err) {
          this.#logger.error('gateway service close step failed', errorFields(err));
        }
      }
    })();
    return this.#closing;
  }
}
