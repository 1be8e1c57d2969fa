import { epochNow, requestId, toArteriaError, type ArteriaError, type RequestV1 } from '@arteria/protocol';
import type { BandwidthLimiter } from './bandwidth.js';
import type { GatewayConfig } from './config.js';
import { errorFields, type GatewayLogger } from './log.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import type { PartStore } from './part-store.js';
import { uploadToStore, type UploadedObject, type UploadProgress } from './upload.js';

export interface UploaderContext {
  config: GatewayConfig;
  outbox: Outbox;
  store: PartStore;
  logger: GatewayLogger;
  /** Aborts when the gateway closes: the loop ends and the upload in progress stops (its entry stays pending). */
  lifetime: AbortSignal;
  limiter: BandwidthLimiter;
  onProgress(entryId: string, progress: UploadProgress): void;
  /** The entry is stored as `uploaded` with its request; publish it. */
  onUploaded(entry: OutboxEntry): void;
  /** An attempt failed and will be retried. */
  onRetry(entry: OutboxEntry, error: ArteriaError): void;
  /** The entry can never be uploaded (its source is gone). */
  onUnsendable(entry: OutboxEntry, error: ArteriaError): void;
}

/** The request for an uploaded run; its id depends on content, so a resend is the same request. */
export function buildRequest(config: GatewayConfig, entry: OutboxEntry, object: UploadedObject, uploadedAt: number): RequestV1 {
  const { tenant, device } = config;
  return {
    v: 1,
    id: requestId({ tenant, device, instanceUid: entry.instanceUid, sha256: object.sha256, algorithm: entry.algorithm, inputUris: [object.uri] }),
    tenant,
    device,
    algorithm: entry.algorithm,
    instanceUid: entry.instanceUid,
    inputs: [{ uri: object.uri, size: object.size, sha256: object.sha256, contentType: 'application/dicom' }],
    priority: entry.priority,
    ...(entry.deadline === undefined ? {} : { deadline: entry.deadline }),
    timings: { acquired: entry.acquiredAt, uploaded: uploadedAt },
    ...(entry.trace === undefined ? {} : { trace: entry.trace }),
  };
}

/**
 * Uploads pending outbox entries one run at a time, oldest first (parts in parallel
 * within a run): the oldest run gets the whole uplink. Failed attempts back off
 * exponentially from resendIntervalMs up to maxRetryDelayMs.
 */
export class Uploader {
  readonly #ctx: UploaderContext;
  readonly #uploads = new Map<string, AbortController>();
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(context: UploaderContext) {
    this.#ctx = context;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** A new entry is pending. */
  wake(): void {
    this.#wake?.();
  }

  /** Stops the upload of a withdrawn entry, if it is in progress. */
  abort(entryId: string, reason: unknown): void {
    this.#uploads.get(entryId)?.abort(reason);
  }

  /** Resolves once the loop has ended (after the lifetime signal aborted). */
  async stopped(): Promise<void> {
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { lifetime, outbox } = this.#ctx;
    while (!lifetime.aborted) {
      const entry = outbox.nextPending(epochNow(), new Set(this.#uploads.keys()));
      if (entry === undefined) await this.#sleep(outbox.nextPendingDueAt());
      else await this.#upload(entry);
    }
  }

  /** Waits until woken, until `dueAt` (epoch ms) or until the gateway closes. */
  async #sleep(dueAt: number | undefined): Promise<void> {
    if (this.#ctx.lifetime.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = dueAt === undefined ? undefined : setTimeout(done, Math.max(0, dueAt - epochNow()));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  async #upload(entry: OutboxEntry): Promise<void> {
    const { config, outbox, lifetime } = this.#ctx;
    const controller = new AbortController();
    const stop = (): void => controller.abort(lifetime.reason);
    lifetime.addEventListener('abort', stop, { once: true });
    this.#uploads.set(entry.id, controller);
    try {
      const object = await uploadToStore(
        this.#ctx.store,
        { bucket: this.#ctx.store.bucket, key: entry.objectKey, source: entry.sourcePath },
        {
          signal: controller.signal,
          journal: outbox.uploads,
          entryId: entry.id,
          partSizeBytes: config.partSizeBytes,
          concurrency: config.uploadConcurrency,
          limiter: this.#ctx.limiter,
          onProgress: (progress) => this.#ctx.onProgress(entry.id, progress),
        },
      );
      const request = buildRequest(config, entry, object, epochNow());
      outbox.markUploaded(entry.id, { ...object, requestId: request.id, requestJson: JSON.stringify(request) }, epochNow());
      const uploaded = outbox.get(entry.id);
      if (uploaded?.state === 'uploaded') this.#ctx.onUploaded(uploaded); // not if withdrawn meanwhile
    } catch (err) {
      if (controller.signal.aborted) return; // withdrawn or closing: the outbox already says what happens next
      const error = toArteriaError(err, 'UPLOAD_FAILED');
      if (error.code === 'INPUT_NOT_FOUND') {
        this.#ctx.onUnsendable(entry, error);
        return;
      }
      const attempts = entry.attempts + 1;
      const delayMs = Math.min(config.resendIntervalMs * 2 ** (attempts - 1), config.maxRetryDelayMs);
      outbox.markAttemptFailed(entry.id, `${error.code}: ${error.message}`, epochNow() + delayMs, epochNow());
      this.#ctx.logger.warn('upload failed; retrying', { entryId: entry.id, attempts, retryInMs: delayMs, ...errorFields(error) });
      this.#ctx.onRetry(entry, error);
    } finally {
      lifetime.removeEventListener('abort', stop);
      this.#uploads.delete(entry.id);
    }
  }
}
