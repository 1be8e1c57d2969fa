import { stat } from 'node:fs/promises';
import { epochNow, requestId, toArteriaError, type RequestV1 } from '@arteria/protocol';
import type { BandwidthLimiter } from './bandwidth.js';
import type { GatewayConfig } from '../config/config.js';
import type { DeviceConnection } from '../connection/connection.js';
import type { TypedEmitter } from '../events.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { Outbox, OutboxEntry } from '../outbox/outbox.js';
import type { PartStore } from './part-store.js';
import { isFinalUploadError } from './put-once.js';
import type { GatewayEvents } from '../types.js';
import { uploadToStore, type UploadedObject } from './upload.js';
import type { UploadSlots } from './upload-slots.js';

export interface UploaderContext {
  config: GatewayConfig;
  outbox: Outbox;
  store: PartStore;
  logger: GatewayLogger;
  /** Aborts when the gateway closes: the loop ends and the upload in progress stops (its entry stays pending). */
  lifetime: AbortSignal;
  limiter: BandwidthLimiter;
  /** The upload slots this uploader shares with segmented runs' segments. */
  slots: UploadSlots;
  /** Where upload progress and retried failures are announced. */
  events: TypedEmitter<GatewayEvents>;
  /**
   * The device's MQTT connection: once it is ready again, runs backing off are due at once.
   * Upload grants come over it, so a run tried while it was down (a gateway starting before
   * its first connect, a network outage) failed for that alone and must not wait a minute more.
   */
  connection: Pick<DeviceConnection, 'on' | 'state'>;
  /** Whether uploads need the connection (upload grants; false with store keys): none is tried while it is down. */
  uploadsNeedConnection: boolean;
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
 * Owns `pending → uploaded` (and `pending → failed` when the source is gone): uploads
 * pending outbox entries oldest first within a priority, sharing `uploadConcurrency`
 * slots: a run takes one slot per part it will send at once, so a large run gets the whole
 * uplink while small runs (one part each) go up side by side instead of queueing behind
 * one another. The next run never overtakes an older one that waits for slots. Failed
 * attempts back off exponentially from resendIntervalMs up to maxRetryDelayMs. Follows the
 * outbox: a new pending entry wakes it, and an entry that ends while it uploads has its
 * upload stopped.
 */
export class Uploader {
  readonly #ctx: UploaderContext;
  readonly #uploads = new Map<string, AbortController>();
  readonly #running = new Set<Promise<void>>();
  /** Slots of the run waiting for them: its file is looked at once, not at every wake-up while it waits. */
  readonly #slotsOf = new Map<string, number>();
  #wake: (() => void) | undefined;
  /** Counts the connection's comebacks: an attempt that saw one retries without backing off. */
  #connects = 0;
  #loop: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(context: UploaderContext) {
    this.#ctx = context;
  }

  start(): void {
    if (this.#unsubscribe !== undefined) return;
    const freed = this.#ctx.slots.onFreed(() => this.#wake?.());
    const unsubscribe = this.#ctx.outbox.subscribe((t) => {
      if (t.to === 'pending') this.#wake?.();
      else if (t.to === 'cancelled') this.#uploads.get(t.entry.id)?.abort(t.reason);
      else if (t.to === 'failed') this.#uploads.get(t.entry.id)?.abort(t.error);
      if (t.to === 'uploaded' || t.to === 'failed' || t.to === 'cancelled' || t.to === 'done') this.#slotsOf.delete(t.entry.id);
    });
    const ready = this.#ctx.connection.on('ready', () => {
      this.#connects += 1;
      this.#ctx.outbox.resetBackoff(epochNow());
      this.#wake?.();
    });
    this.#unsubscribe = () => {
      freed();
      unsubscribe();
      ready();
    };
    this.#loop = this.#run();
  }

  /** Resolves once the loop and every upload it started have ended (after the lifetime signal aborted). */
  async stopped(): Promise<void> {
    this.#wake?.();
    await this.#loop;
    this.#unsubscribe?.();
  }

  async #run(): Promise<void> {
    const { lifetime, outbox } = this.#ctx;
    while (!lifetime.aborted) {
      if (this.#ctx.uploadsNeedConnection && this.#ctx.connection.state !== 'ready') {
        await this.#sleep(undefined); // the connection's 'ready' wakes it
        continue;
      }
      const busy = new Set(this.#uploads.keys());
      const entry = outbox.nextPending(epochNow(), busy);
      if (entry === undefined) {
        // Entries uploading now are still pending: their due time must not wake this loop at once.
        await this.#sleep(outbox.nextPendingDueAt(busy));
        continue;
      }
      const release = this.#ctx.slots.tryTake(await this.#slotsFor(entry));
      if (release === undefined) {
        await this.#sleep(undefined); // until slots are freed (or a newer entry arrives: the oldest still goes first)
        continue;
      }
      const upload = this.#upload(entry).finally(() => {
        release();
        this.#running.delete(upload);
        this.#wake?.();
      });
      this.#running.add(upload);
    }
    await Promise.all(this.#running);
  }

  /** Parts the run sends at once: its size in parts, at most uploadConcurrency (1 when its size is unknown). */
  async #slotsFor(entry: OutboxEntry): Promise<number> {
    const known = this.#slotsOf.get(entry.id);
    if (known !== undefined) return known;
    const { partSizeBytes, uploadConcurrency } = this.#ctx.config;
    const size = entry.size ?? (await stat(entry.sourcePath).then((s) => s.size, () => 0));
    const slots = Math.min(uploadConcurrency, Math.max(1, Math.ceil(size / partSizeBytes)));
    this.#slotsOf.set(entry.id, slots);
    return slots;
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
    const connects = this.#connects;
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
          onProgress: (progress) => this.#ctx.events.emit('progress', { entryId: entry.id, ...progress }),
        },
      );
      // Withdrawn or closing while the last part went up: the outbox already says what happens next.
      if (controller.signal.aborted) return;
      const request = buildRequest(config, entry, object, epochNow());
      outbox.markUploaded(entry.id, { ...object, requestId: request.id, requestJson: JSON.stringify(request) }, epochNow());
    } catch (err) {
      if (controller.signal.aborted) return; // withdrawn or closing: the outbox already says what happens next
      const error = toArteriaError(err, 'UPLOAD_FAILED');
      if (isFinalUploadError(error)) {
        outbox.fail(entry.id, error, epochNow());
        return;
      }
      const attempts = entry.attempts + 1;
      // The connection came back while this attempt ran (and found the entry still busy): go again now.
      const delayMs = this.#connects !== connects ? 0 : Math.min(config.resendIntervalMs * 2 ** (attempts - 1), config.maxRetryDelayMs);
      outbox.markAttemptFailed(entry.id, `${error.code}: ${error.message}`, epochNow() + delayMs, epochNow());
      this.#ctx.logger.warn('upload failed; retrying', { entryId: entry.id, attempts, retryInMs: delayMs, ...errorFields(error) });
      this.#ctx.events.emit('error', { entryId: entry.id, error });
    } finally {
      lifetime.removeEventListener('abort', stop);
      this.#uploads.delete(entry.id);
      this.#slotsOf.delete(entry.id); // a retry looks at the file again: it may have changed meanwhile
    }
  }
}
