import { ArteriaError, MAX_GRANT_PARTS, epochNow, type GrantOperation } from '@arteria/protocol';
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
  /**
   * Starts a multipart upload of `key` that will send `partNumbers` (in that order) and
   * resolves with its upload id, the first part URLs coming with it; undefined where the
   * platform cannot (the upload is then created with a `create` URL).
   */
  startUpload?(key: string, partNumbers: readonly number[], signal?: AbortSignal): Promise<string | undefined>;
  /** The parts an upload is about to send, in the order it sends them, so their URLs can be asked for ahead of need. */
  plan?(key: string, uploadId: string, partNumbers: readonly number[], signal?: AbortSignal): void;
  /** Asks for the URL of `need` now without waiting for it (an object about to be written), unless it is granted or being granted. */
  prefetch?(need: UrlNeed, signal?: AbortSignal): void;
  /** The upload ended (completed or aborted): its URLs are of no more use. */
  forget?(key: string, uploadId: string): void;
}

/** A URL is used only while this much of its life is left (a part may take a while to send). */
const MARGIN_MS = 15_000;
/** The next batch of planned part URLs is asked for while this many granted ones are still unused, so parts never wait for a grant. */
const LOOKAHEAD_PARTS = 16;

interface Cached {
  url: string;
  expiresAt: number;
}

/** Cache id of one URL: per key for put, create and head; per upload for complete and each part. */
const urlId = (key: string, uploadId: string, what: GrantOperation | number): string =>
  `${key}\n${what === 'put' || what === 'create' || what === 'head' ? '' : uploadId}\n${what}`;
const uploadOf = (key: string, uploadId: string): string => `${key}\n${uploadId}`;

/**
 * Presigned URLs from upload grants, with as few round trips to the platform as the upload
 * allows: `put` comes with `head` (one grant for a small run); a multipart upload is
 * started by the platform in the same grant that carries its first MAX_GRANT_PARTS part
 * URLs, `complete` and `head`; later part URLs come a batch per grant, asked for while
 * LOOKAHEAD_PARTS granted ones are still unused (a resumed upload's batches start as soon
 * as it says which parts it will send). A URL is reused
 * until shortly before its grant expires; a resumed upload (after a crash) simply asks
 * again for its upload id. A refused grant rejects every URL it was asked for with the
 * platform's typed error.
 */
export class GrantedUrls implements UrlSource {
  readonly #ask: (question: GrantQuestion, signal?: AbortSignal) => Promise<GrantAnswer>;
  readonly #now: () => number;
  readonly #urls = new Map<string, Cached>();
  /** The grant in flight that will carry a URL, by URL id. */
  readonly #pending = new Map<string, Promise<void>>();
  /** Each upload's planned parts in sending order, and where each part stands in it. */
  readonly #plans = new Map<string, { parts: readonly number[]; index: Map<number, number> }>();

  constructor(ask: (question: GrantQuestion, signal?: AbortSignal) => Promise<GrantAnswer>, now: () => number = epochNow) {
    this.#ask = ask;
    this.#now = now;
  }

  async startUpload(key: string, partNumbers: readonly number[], signal?: AbortSignal): Promise<string | undefined> {
    const question = { operations: ['create', 'complete', 'head'] as GrantOperation[], parts: partNumbers.slice(0, MAX_GRANT_PARTS) };
    let answer: GrantAnswer;
    try {
      answer = await this.#ask({ key, ...question }, signal);
    } catch (err) {
      // A platform that predates starting uploads refuses part URLs without an upload id.
      if (err instanceof ArteriaError && err.code === 'INVALID_REQUEST') return undefined;
      throw err;
    }
    if (answer.uploadId === undefined) return undefined;
    this.#keep(key, answer.uploadId, question, answer);
    this.plan(key, answer.uploadId, partNumbers, signal);
    return answer.uploadId;
  }

  plan(key: string, uploadId: string, partNumbers: readonly number[], signal?: AbortSignal): void {
    const parts = [...partNumbers];
    this.#plans.set(uploadOf(key, uploadId), { parts, index: new Map(parts.map((p, i) => [p, i])) });
    const first = parts[0];
    if (first !== undefined) this.#background(key, uploadId, first, signal);
  }

  forget(key: string, uploadId: string): void {
    this.#plans.delete(uploadOf(key, uploadId));
    const prefix = `${key}\n${uploadId}\n`;
    for (const id of this.#urls.keys()) if (id.startsWith(prefix)) this.#urls.delete(id);
  }

  prefetch(need: UrlNeed, signal?: AbortSignal): void {
    if (need.op === 'list' || need.op === 'abort' || need.op === 'part' || signal?.aborted === true) return;
    const uploadId = need.uploadId ?? '';
    const id = urlId(need.key, uploadId, need.op);
    if (this.#usable(id) !== undefined || this.#pending.has(id)) return;
    void this.#grant(need.key, uploadId, this.#question(need.key, uploadId, need.op), signal);
  }

  async url(need: UrlNeed, signal?: AbortSignal): Promise<string> {
    const { key, uploadId = '' } = need;
    if (need.op === 'list' || need.op === 'abort') return this.#uncached(need, signal);
    const what = need.op === 'part' ? (need.partNumber ?? 1) : need.op;
    const id = urlId(key, uploadId, what);
    let url = this.#usable(id);
    if (url === undefined) {
      await (this.#pending.get(id) ?? this.#grant(key, uploadId, this.#question(key, uploadId, what)));
      url = this.#urls.get(id)?.url; // just granted: used even when the grant is shorter than the margin
    }
    if (url === undefined) throw new ArteriaError('GRANT_UNAVAILABLE', `the upload grant for ${key} carries no URL for ${typeof what === 'number' ? `part ${what}` : what}`);
    if (typeof what === 'number') this.#background(key, uploadId, what, signal);
    return url;
  }

  /** `list` (one page) and `abort`: asked for on their own, never kept. */
  async #uncached(need: UrlNeed, signal: AbortSignal | undefined): Promise<string> {
    const op = need.op as 'list' | 'abort';
    const answer = await this.#ask(
      {
        key: need.key,
        operations: [op],
        ...(need.uploadId === undefined ? {} : { uploadId: need.uploadId }),
        ...(need.partNumberMarker === undefined ? {} : { partNumberMarker: need.partNumberMarker }),
      },
      signal,
    );
    const url = answer.urls[op];
    if (url === undefined) throw new ArteriaError('GRANT_UNAVAILABLE', `the upload grant for ${need.key} carries no ${op} URL`);
    return url;
  }

  /** What to ask for along with `what`: the URLs the upload needs next that are neither granted nor being granted. */
  #question(key: string, uploadId: string, what: GrantOperation | number): { operations: GrantOperation[]; parts: number[] } {
    const missing = (w: GrantOperation | number): boolean => this.#usable(urlId(key, uploadId, w)) === undefined && !this.#pending.has(urlId(key, uploadId, w));
    if (typeof what !== 'number') {
      const along: GrantOperation[] = what === 'put' || what === 'complete' ? ['head'] : [];
      return { operations: [what, ...along.filter(missing)], parts: [] };
    }
    const plan = this.#plans.get(uploadOf(key, uploadId));
    const at = plan?.index.get(what);
    const parts = [what];
    if (plan !== undefined && at !== undefined) {
      for (let i = at + 1; i < plan.parts.length && parts.length < MAX_GRANT_PARTS; i += 1) {
        const part = plan.parts[i] as number;
        if (missing(part)) parts.push(part);
      }
    }
    // The upload's closing operations come with its first batch of parts.
    return { operations: (['complete', 'head'] as const).filter(missing), parts };
  }

  /** Asks the platform for one grant; each URL it is asked for is pending on it until it settles. */
  #grant(key: string, uploadId: string, question: { operations: GrantOperation[]; parts: number[] }, signal?: AbortSignal): Promise<void> {
    const ids = [...question.operations.map((op) => urlId(key, uploadId, op)), ...question.parts.map((p) => urlId(key, uploadId, p))];
    const asked = this.#ask(
      {
        key,
        ...(uploadId === '' ? {} : { uploadId }),
        operations: question.operations,
        ...(question.parts.length === 0 ? {} : { parts: question.parts }),
      },
      signal,
    ).then((answer) => this.#keep(key, uploadId, question, answer));
    const settled: Promise<void> = asked.finally(() => {
      for (const id of ids) if (this.#pending.get(id) === settled) this.#pending.delete(id);
    });
    for (const id of ids) this.#pending.set(id, settled);
    // A batch asked for ahead may fail with nobody waiting yet; whoever needs one of its URLs later asks again.
    settled.catch(() => undefined);
    return settled;
  }

  /** Keeps the URLs of `answer` that were asked for. */
  #keep(key: string, uploadId: string, question: { operations: GrantOperation[]; parts: number[] }, answer: GrantAnswer): void {
    this.#prune();
    for (const op of question.operations) {
      const url = answer.urls[op];
      if (url !== undefined) this.#urls.set(urlId(key, uploadId, op), { url, expiresAt: answer.expiresAt });
    }
    const wanted = new Set(question.parts);
    for (const part of answer.parts) if (wanted.has(part.partNumber)) this.#urls.set(urlId(key, uploadId, part.partNumber), { url: part.url, expiresAt: answer.expiresAt });
  }

  /** Asks for the next planned part URLs when fewer than LOOKAHEAD_PARTS after `part` are granted or on their way. */
  #background(key: string, uploadId: string, part: number, signal: AbortSignal | undefined): void {
    const plan = this.#plans.get(uploadOf(key, uploadId));
    const at = plan?.index.get(part);
    if (plan === undefined || at === undefined || signal?.aborted === true) return;
    let ready = 0;
    for (let i = at; i < plan.parts.length && ready < LOOKAHEAD_PARTS; i += 1) {
      const p = plan.parts[i] as number;
      const id = urlId(key, uploadId, p);
      if (this.#usable(id) !== undefined || this.#pending.has(id)) {
        ready += 1;
        continue;
      }
      void this.#grant(key, uploadId, this.#question(key, uploadId, p), signal);
      return;
    }
  }

  #usable(id: string): string | undefined {
    const cached = this.#urls.get(id);
    return cached !== undefined && cached.expiresAt - MARGIN_MS > this.#now() ? cached.url : undefined;
  }

  /** Drops URLs whose grant expired (uploads that ended without a word, runs sent long ago). */
  #prune(): void {
    const now = this.#now();
    for (const [id, cached] of this.#urls) if (cached.expiresAt <= now) this.#urls.delete(id);
  }
}
