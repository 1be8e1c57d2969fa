import { MAX_GRANT_PARTS, epochNow, type GrantOperation } from '@arteria/protocol';
import type { GrantAnswer, GrantQuestion } from './upload-grants.js';

/** One store operation the gateway wants to make: which URL it needs. */
export interface UrlNeed {
  op: GrantOperation | 'part';
  key: string;
  uploadId?: string;
  partNumber?: number;
  partNumberMarker?: number;
}

/** Where a store operation's presigned URL comes from. */
export interface UrlSource {
  url(need: UrlNeed, signal?: AbortSignal): Promise<string>;
}

/** A URL is used only while this much of its life is left (a part may take a while to send). */
const MARGIN_MS = 15_000;

interface Cached {
  url: string;
  expiresAt: number;
}

/**
 * Presigned URLs from upload grants, asked for as the upload needs them: part URLs a
 * batch at a time (MAX_GRANT_PARTS aligned part numbers per grant, shared by the parts in
 * flight), the others one grant each. A URL is reused until shortly before its grant
 * expires; a resumed upload (after a crash) simply asks again for its upload id.
 */
export class GrantedUrls implements UrlSource {
  readonly #ask: (question: GrantQuestion, signal?: AbortSignal) => Promise<GrantAnswer>;
  readonly #parts = new Map<string, Cached>();
  readonly #batches = new Map<string, Promise<void>>();
  readonly #now: () => number;

  constructor(ask: (question: GrantQuestion, signal?: AbortSignal) => Promise<GrantAnswer>, now: () => number = epochNow) {
    this.#ask = ask;
    this.#now = now;
  }

  async url(need: UrlNeed, signal?: AbortSignal): Promise<string> {
    if (need.op !== 'part') {
      const answer = await this.#ask(
        {
          key: need.key,
          operations: [need.op],
          ...(need.uploadId === undefined ? {} : { uploadId: need.uploadId }),
          ...(need.partNumberMarker === undefined ? {} : { partNumberMarker: need.partNumberMarker }),
        },
        signal,
      );
      const url = answer.urls[need.op];
      if (url === undefined) throw new Error(`the grant for ${need.key} carries no ${need.op} URL`);
      return url;
    }
    const { key, uploadId = '', partNumber = 1 } = need;
    const id = `${key}\n${uploadId}\n${partNumber}`;
    const usable = (): Cached | undefined => {
      const cached = this.#parts.get(id);
      return cached !== undefined && cached.expiresAt - MARGIN_MS > this.#now() ? cached : undefined;
    };
    let cached = usable();
    if (cached === undefined) {
      const first = Math.floor((partNumber - 1) / MAX_GRANT_PARTS) * MAX_GRANT_PARTS + 1;
      const batchId = `${key}\n${uploadId}\n${first}`;
      let batch = this.#batches.get(batchId);
      if (batch === undefined) {
        batch = this.#fetchBatch(key, uploadId, first, signal).finally(() => this.#batches.delete(batchId));
        this.#batches.set(batchId, batch);
      }
      await batch;
      cached = this.#parts.get(id); // just granted: used even when the grant is shorter than the margin
    }
    if (cached === undefined) throw new Error(`the grant for ${key} carries no URL for part ${partNumber}`);
    // Each part URL serves one send; a retry of the same part reuses it while it lives.
    return cached.url;
  }

  async #fetchBatch(key: string, uploadId: string, first: number, signal: AbortSignal | undefined): Promise<void> {
    const parts = Array.from({ length: MAX_GRANT_PARTS }, (_, i) => first + i).filter((n) => n <= 10_000);
    const answer = await this.#ask({ key, uploadId, operations: [], parts }, signal);
    for (const part of answer.parts) this.#parts.set(`${key}\n${uploadId}\n${part.partNumber}`, { url: part.url, expiresAt: answer.expiresAt });
  }

  /** Forgets the part URLs of an upload that ended. */
  forget(key: string, uploadId: string): void {
    const prefix = `${key}\n${uploadId}\n`;
    for (const id of this.#parts.keys()) if (id.startsWith(prefix)) this.#parts.delete(id);
  }
}
