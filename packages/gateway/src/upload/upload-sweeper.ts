import { epochNow } from '@arteria/protocol';
import { errorFields, type GatewayLogger } from '../log.js';
import type { PartStore } from './part-store.js';
import type { UploadJournal } from '../outbox/upload-journal.js';

export interface UploadSweeperOptions {
  store: PartStore;
  journal: UploadJournal;
  /** This gateway's own key prefix, `{tenant}/{device}/`. */
  prefix: string;
  /** An upload no outbox entry resumes is aborted once it is this old. */
  abandonedAfterMs: number;
  logger: GatewayLogger;
  lifetime: AbortSignal;
}

/**
 * Aborts multipart uploads nobody will complete, so their parts do not stay in the store
 * (and on the bill): at once those whose outbox entry ended (withdrawn, failed, gone);
 * after `abandonedAfterMs` those the store lists under this gateway's prefix that the
 * outbox does not know (created just before a crash, or by a lost outbox). Uploads of
 * pending entries are never touched: they resume.
 */
export class UploadSweeper {
  readonly #options: UploadSweeperOptions;
  #running: Promise<number> | undefined;

  constructor(options: UploadSweeperOptions) {
    this.#options = options;
  }

  /** One sweep (joins the one in progress); resolves with how many uploads it aborted, never rejects. */
  sweep(): Promise<number> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #sweep(): Promise<number> {
    const { store, journal, prefix, abandonedAfterMs, logger, lifetime } = this.#options;
    let aborted = 0;
    const abort = async (key: string, uploadId: string, why: string): Promise<boolean> => {
      try {
        await store.abortUpload(key, uploadId, lifetime);
        aborted += 1;
        logger.info('aborted a multipart upload nobody will complete', { key, uploadId, why });
        return true;
      } catch (err) {
        if (!lifetime.aborted) logger.warn('could not abort a multipart upload; the next sweep tries again', { key, uploadId, ...errorFields(err) });
        return false;
      }
    };
    for (const record of journal.all()) {
      if (!record.entryPending && (await abort(record.key, record.uploadId, 'its run ended'))) journal.forget(record.entryId);
    }
    if (store.listUploads === undefined || lifetime.aborted) return aborted;
    try {
      const cutoff = epochNow() - abandonedAfterMs;
      const listed = await store.listUploads(prefix, lifetime);
      // Read after the listing, so an upload begun while it ran is known.
      const known = new Set(journal.all().filter((r) => r.entryPending).map((r) => r.uploadId));
      for (const upload of listed) {
        if (known.has(upload.uploadId) || upload.initiatedAt === undefined || upload.initiatedAt > cutoff) continue;
        await abort(upload.key, upload.uploadId, `older than ${abandonedAfterMs} ms and unknown to the outbox`);
      }
    } catch (err) {
      if (!lifetime.aborted) logger.warn('could not list multipart uploads; the next sweep tries again', errorFields(err));
    }
    return aborted;
  }
}
