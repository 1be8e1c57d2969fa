import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArteriaError } from '@arteria/protocol';
import { toArteriaError } from '@arteria/protocol';
import type { OriginalIdentity } from '../deid/deidentify.js';
import type { Gateway } from '../gateway.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { GatewayResult } from '../types.js';
import { storeFile, type DicomNode } from './scu.js';
import { buildResultReport } from './sr.js';

export interface ResultDeliveryOptions {
  /** Where reports are written before they are sent; delivered ones move to `sent/`. */
  folder: string;
  /** The PACS or viewer that receives the reports by C-STORE; without one, reports are only written. */
  node?: DicomNode;
  /** Local systems get every re-identified result as JSON by HTTP POST. */
  webhookUrl?: string;
  /** Tries per report; between tries the delay doubles from retryDelayMs. */
  attempts: number;
  retryDelayMs: number;
}

export interface DeliveredResult {
  result: GatewayResult;
  original: OriginalIdentity;
  reportPath: string;
  stored: boolean;
}

/**
 * Delivers each result on-site in the original study's terms: a Basic Text SR that
 * references the original instance (written to disk, then C-STOREd to the configured
 * node) and, optionally, a JSON event to a local webhook. Results of runs sent without
 * de-identification have no original to refer to and are skipped here.
 */
export class ResultDelivery {
  readonly #options: ResultDeliveryOptions;
  readonly #logger: GatewayLogger;
  readonly #unsubscribe: () => void;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #listeners = new Set<(delivered: DeliveredResult) => void>();
  readonly #errorListeners = new Set<(error: ArteriaError) => void>();
  readonly #lifetime = new AbortController();

  constructor(gateway: Gateway, options: ResultDeliveryOptions, logger: GatewayLogger) {
    this.#options = options;
    this.#logger = logger;
    this.#unsubscribe = gateway.on('result', ({ result, original }) => {
      if (original !== undefined) this.#track(result, this.#deliver(result, original));
    });
  }

  onDelivered(listener: (delivered: DeliveredResult) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onError(listener: (error: ArteriaError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Waits for deliveries in progress. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops taking results and abandons retries (reports stay on disk). Idempotent. */
  async close(): Promise<void> {
    this.#unsubscribe();
    this.#lifetime.abort();
    await this.idle();
  }

  /**
   * Delivers again what an earlier run of the gateway could not (reports still in the
   * folder, not in `sent/`). Call once after the gateway started.
   */
  async start(): Promise<void> {
    const { folder } = this.#options;
    await mkdir(join(folder, 'sent'), { recursive: true });
    for (const name of await readdir(folder)) {
      if (!name.endsWith('.json')) continue;
      const pending = JSON.parse(await readFile(join(folder, name), 'utf8')) as { result: GatewayResult; original: OriginalIdentity };
      this.#logger.info('delivering a result left over from before', { requestId: pending.result.requestId });
      this.#track(pending.result, this.#send(pending.result, pending.original));
    }
  }

  #track(result: GatewayResult, work: Promise<void>): void {
    const tracked = work.catch((err: unknown) => {
      const error = toArteriaError(err, 'STORAGE_UNAVAILABLE');
      this.#logger.error('delivering a result on-site failed; it stays in the reports folder', { requestId: result.requestId, ...errorFields(error) });
      for (const listener of this.#errorListeners) listener(error);
    });
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  /** Writes the report and its event first (so a restart can finish the delivery), then sends. */
  async #deliver(result: GatewayResult, original: OriginalIdentity): Promise<void> {
    const { folder } = this.#options;
    await mkdir(join(folder, 'sent'), { recursive: true });
    await writeFile(join(folder, `${result.requestId}.dcm`), buildResultReport(result, original));
    await writeFile(join(folder, `${result.requestId}.json`), JSON.stringify({ result, original }));
    await this.#send(result, original);
  }

  async #send(result: GatewayResult, original: OriginalIdentity): Promise<void> {
    const { folder, node, webhookUrl } = this.#options;
    const reportPath = join(folder, `${result.requestId}.dcm`);
    // The two channels are independent: one failing must not hold back the other.
    const [posted, sent] = await Promise.allSettled([
      webhookUrl === undefined ? Promise.resolve() : this.#retry(() => this.#post(webhookUrl, result, original)),
      node === undefined ? Promise.resolve() : this.#retry(() => storeFile(reportPath, node)),
    ]);
    for (const outcome of [posted, sent]) if (outcome.status === 'rejected') throw outcome.reason;
    const sentPath = join(folder, 'sent', `${result.requestId}.dcm`);
    await rename(reportPath, sentPath);
    await rename(join(folder, `${result.requestId}.json`), join(folder, 'sent', `${result.requestId}.json`));
    this.#logger.info('result delivered on-site', { requestId: result.requestId, study: original.studyInstanceUid, stored: node !== undefined });
    for (const listener of this.#listeners) listener({ result, original, reportPath: sentPath, stored: node !== undefined });
  }

  async #post(url: string, result: GatewayResult, original: OriginalIdentity): Promise<void> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, result, original }),
      signal: this.#lifetime.signal,
    });
    if (!response.ok) throw new Error(`webhook ${url} answered ${response.status}`);
  }

  async #retry(operation: () => Promise<void>): Promise<void> {
    let delay = this.#options.retryDelayMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await operation();
        return;
      } catch (err) {
        if (attempt >= this.#options.attempts || this.#lifetime.signal.aborted) throw err;
        this.#logger.warn('on-site delivery failed; retrying', { attempt, ...errorFields(err) });
        await sleep(delay, undefined, { signal: this.#lifetime.signal }).catch(() => {
          throw err; // closing: give up with the delivery's own error
        });
        delay *= 2;
      }
    }
  }
}
