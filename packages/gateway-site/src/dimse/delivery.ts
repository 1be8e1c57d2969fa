import { access, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ArteriaError, toArteriaError } from '@arteria/protocol';
import type { OriginalIdentity } from '@arteria/deid';
import { errorFields, type Gateway, type GatewayLogger, type GatewayResult } from '@arteria/gateway';
import { LocalMqttPublisher, type LocalMqttOptions } from '../results/local-mqtt.js';
import { storeFile, type DicomNode } from './scu.js';
import { buildResultReport } from './sr.js';

export interface ResultDeliveryOptions {
  /** Where reports are written before they are sent; delivered ones move to `sent/`. */
  folder: string;
  /** The PACS or viewer that receives the reports by C-STORE; without one, reports are only written. */
  node?: DicomNode;
  /** Local systems get every re-identified result as JSON by HTTP POST. */
  webhookUrl?: string;
  /** ...and/or as the same JSON published (QoS 1) to a broker on the hospital network. */
  mqtt?: LocalMqttOptions;
  /** Tries per report; between tries the delay doubles from retryDelayMs. */
  attempts: number;
  retryDelayMs: number;
  /** How often results still undelivered after their tries are tried again (default 60 s). */
  redeliverIntervalMs?: number;
}

/** The ways a result leaves for local systems; each is done once, even across restarts. */
type Channel = 'webhook' | 'mqtt' | 'node';

/** `{requestId}.json` in the reports folder: written before any channel is tried. */
interface PendingDelivery {
  result: GatewayResult;
  original: OriginalIdentity;
  /** Channels that already took the result. */
  done?: Channel[];
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    (err: unknown) => {
      if (isMissing(err)) return false;
      throw err;
    },
  );
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
  /** Request ids being delivered now: the periodic sweep leaves them alone. */
  readonly #delivering = new Set<string>();
  readonly #listeners = new Set<(delivered: DeliveredResult) => void>();
  readonly #errorListeners = new Set<(error: ArteriaError) => void>();
  readonly #lifetime = new AbortController();
  readonly #mqtt: LocalMqttPublisher | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(gateway: Gateway, options: ResultDeliveryOptions, logger: GatewayLogger) {
    this.#options = options;
    this.#logger = logger;
    this.#mqtt = options.mqtt && new LocalMqttPublisher(options.mqtt, gateway.config.device, logger);
    this.#unsubscribe = gateway.on('result', ({ result, original }) => {
      if (original !== undefined) this.#claim(result.requestId, () => this.#deliver(result, original));
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
    clearInterval(this.#sweep);
    this.#lifetime.abort();
    await this.idle();
    await this.#mqtt?.close();
  }

  /**
   * Connects to the local broker (without waiting for it) and delivers again what an
   * earlier run of the gateway could not (reports still in the folder, not in `sent/`);
   * from then on, what is still undelivered is tried again every `redeliverIntervalMs`.
   * Call once after the gateway started.
   */
  async start(): Promise<void> {
    await mkdir(join(this.#options.folder, 'sent'), { recursive: true });
    await this.#mqtt?.start();
    await this.#resume('delivering a result left over from before');
    this.#sweep = setInterval(() => {
      this.#resume('delivering a result again').catch((err: unknown) => this.#logger.error('looking for undelivered results failed', errorFields(err)));
    }, this.#options.redeliverIntervalMs ?? 60_000);
    this.#sweep.unref();
  }

  async #resume(message: string): Promise<void> {
    const { folder } = this.#options;
    for (const name of await readdir(folder)) {
      if (!name.endsWith('.json') || this.#lifetime.signal.aborted) continue;
      // Claimed before the file is read: a delivery finishing while the read is under way
      // would otherwise leave this sweep holding a stale list of channels already done.
      const requestId = name.slice(0, -'.json'.length);
      this.#claim(requestId, async () => {
        let pending: PendingDelivery;
        try {
          pending = JSON.parse(await readFile(join(folder, name), 'utf8')) as PendingDelivery;
        } catch (err) {
          if (isMissing(err)) return; // delivered (moved to sent/) since the folder was listed
          this.#logger.error('an undelivered result cannot be read; left in place', { name, ...errorFields(err) });
          return;
        }
        this.#logger.info(message, { requestId, done: pending.done ?? [] });
        await this.#send(pending);
      });
    }
  }

  /** Runs `work` for a request unless a delivery of it is under way; at most one at a time. */
  #claim(requestId: string, work: () => Promise<void>): void {
    if (this.#delivering.has(requestId)) return;
    this.#delivering.add(requestId);
    const tracked = work().catch((err: unknown) => {
      const error = toArteriaError(err, 'STORAGE_UNAVAILABLE');
      this.#logger.error('delivering a result on-site failed; it stays in the reports folder and is tried again', { requestId, ...errorFields(error) });
      for (const listener of this.#errorListeners) listener(error);
    });
    this.#inFlight.add(tracked);
    void tracked.finally(() => {
      this.#inFlight.delete(tracked);
      this.#delivering.delete(requestId);
    });
  }

  /** Writes the report and its event first (so a restart can finish the delivery), then sends. */
  async #deliver(result: GatewayResult, original: OriginalIdentity): Promise<void> {
    const { folder } = this.#options;
    await mkdir(join(folder, 'sent'), { recursive: true });
    // A result met again (a resend answered from the ledger) after its delivery: nothing to do.
    if (await exists(join(folder, 'sent', `${result.requestId}.json`))) return;
    // One met again while its earlier delivery waits for a retry keeps the channels done so far.
    const earlier = await readFile(join(folder, `${result.requestId}.json`), 'utf8').catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    if (earlier !== undefined) {
      await this.#send(JSON.parse(earlier) as PendingDelivery);
      return;
    }
    await writeFile(join(folder, `${result.requestId}.dcm`), buildResultReport(result, original));
    // Written whole, then renamed into place: the sweep never reads half an event.
    const eventPath = join(folder, `${result.requestId}.json`);
    await writeFile(`${eventPath}.tmp`, JSON.stringify({ result, original } satisfies PendingDelivery));
    await rename(`${eventPath}.tmp`, eventPath);
    await this.#send({ result, original });
  }

  async #send(pending: PendingDelivery): Promise<void> {
    const { result, original } = pending;
    const { folder, node, webhookUrl } = this.#options;
    const reportPath = join(folder, `${result.requestId}.dcm`);
    const eventPath = join(folder, `${result.requestId}.json`);
    const done = new Set(pending.done);
    // Each channel that took the result is recorded, so a retry or a restart does not repeat it.
    let recording = Promise.resolve();
    const record = (channel: Channel): Promise<void> => {
      done.add(channel);
      const next = { ...pending, done: [...done] } satisfies PendingDelivery;
      recording = recording.then(async () => {
        await writeFile(`${eventPath}.tmp`, JSON.stringify(next));
        await rename(`${eventPath}.tmp`, eventPath);
      });
      return recording;
    };
    const channel = (name: Channel, configured: boolean, operation: () => Promise<void>): Promise<void> =>
      !configured || done.has(name) ? Promise.resolve() : this.#retry(operation).then(() => record(name));
    const event = JSON.stringify({ v: 1, result, original });
    const mqtt = this.#mqtt;
    // The channels are independent: one failing must not hold back the others.
    const outcomes = await Promise.allSettled([
      channel('webhook', webhookUrl !== undefined, () => this.#post(webhookUrl ?? '', event)),
      channel('mqtt', mqtt !== undefined, () => mqtt?.publish(mqtt.topic(result.device), event) ?? Promise.resolve()),
      channel('node', node !== undefined, () => (node === undefined ? Promise.resolve() : storeFile(reportPath, node))),
    ]);
    await recording;
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
    const sentPath = join(folder, 'sent', `${result.requestId}.dcm`);
    await rename(reportPath, sentPath);
    await rename(eventPath, join(folder, 'sent', `${result.requestId}.json`));
    this.#logger.info('result delivered on-site', { requestId: result.requestId, study: original.studyInstanceUid, stored: node !== undefined });
    for (const listener of this.#listeners) listener({ result, original, reportPath: sentPath, stored: node !== undefined });
  }

  async #post(url: string, event: string): Promise<void> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: event,
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
