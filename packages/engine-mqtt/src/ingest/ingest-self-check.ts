import { randomUUID } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Requests on this topic root are the ingest's own canaries; no device id can hold `~`. */
export const CANARY_ROOT = 'arteria/v1/~canary';

/** The canary topic of one ingest connection (shaped like a device's requests topic). */
export function canaryTopic(clientId: string): string {
  return `${CANARY_ROOT}/${clientId.replace(/[^A-Za-z0-9_.-]/g, '_')}/requests`;
}

export const isCanaryTopic = (topic: string): boolean => topic.startsWith(`${CANARY_ROOT}/`);

export interface SelfCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Publishes a canary carrying `nonce`; resolves once the broker acknowledged it. */
  send(nonce: string): Promise<void>;
  /** Called after each failed check with the number of failures in a row. */
  repair(failures: number): Promise<void>;
  log(line: string, level?: 'info' | 'warn'): void;
  metrics?: Registry;
}

/**
 * "Able to admit", checked end to end: every interval the ingest publishes a canary request
 * to the broker on a topic its own subscriptions cover and waits for it to come back. A
 * connected socket alone proves nothing (a broker can restore a session without its
 * subscriptions); a canary that returns does. Readiness follows the last check.
 */
export class IngestSelfCheck {
  readonly #o: SelfCheckOptions;
  readonly #pending = new Map<string, () => void>();
  #ok = false;
  #failures = 0;
  #lastOkAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<boolean> | undefined;
  #stopped = false;
  readonly #okGauge: Gauge | undefined;
  readonly #failed: Counter | undefined;

  constructor(options: SelfCheckOptions) {
    this.#o = options;
    if (options.metrics !== undefined) {
      const registers = [options.metrics];
      this.#okGauge = new Gauge({ name: 'arteria_ingest_self_check_ok', help: '1 when the last canary request went through the broker and back to this ingest, else 0.', registers });
      this.#failed = new Counter({ name: 'arteria_ingest_self_check_failures_total', help: 'Canary requests that did not come back through the broker in time (each one triggers a repair).', registers });
      this.#okGauge.set(0);
    }
  }

  get ok(): boolean {
    return this.#ok;
  }

  get status(): { ok: boolean; failuresInARow: number; lastOkAt: number | null } {
    return { ok: this.#ok, failuresInARow: this.#failures, lastOkAt: this.#lastOkAt ?? null };
  }

  /** Not ready until the next check passes (the connection dropped). */
  invalidate(): void {
    this.#set(false);
  }

  /** A canary arrived; true when it was one of this instance's. */
  received(nonce: string): boolean {
    const resolve = this.#pending.get(nonce);
    if (resolve === undefined) return false;
    this.#pending.delete(nonce);
    resolve();
    return true;
  }

  /** Starts the periodic checks (the first one at once). */
  start(): void {
    this.#schedule(0);
  }

  /** Runs one check now, unless one is running (then its outcome). */
  async check(): Promise<boolean> {
    this.#running ??= this.#checkOnce().finally(() => (this.#running = undefined));
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const resolve of this.#pending.values()) resolve();
    this.#pending.clear();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // After a failure the next check (after the repair) comes sooner.
      void this.check().then((ok) => this.#schedule(ok ? this.#o.intervalMs : Math.min(this.#o.intervalMs, 1_000)));
    }, ms);
    this.#timer.unref();
  }

  async #checkOnce(): Promise<boolean> {
    const nonce = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<boolean>((resolve) => {
      this.#pending.set(nonce, () => resolve(true));
      timer = setTimeout(() => resolve(false), this.#o.timeoutMs);
    });
    let sendError: Error | undefined;
    this.#o.send(nonce).catch((err: unknown) => (sendError = err instanceof Error ? err : new Error(String(err))));
    const ok = await back;
    clearTimeout(timer);
    this.#pending.delete(nonce);
    if (this.#stopped) return this.#ok;
    if (ok) {
      if (this.#failures > 0) this.#o.log(`self-check passed again after ${this.#failures} failed check(s): admitting requests`);
      this.#failures = 0;
      this.#lastOkAt = Date.now();
      this.#set(true);
      return true;
    }
    this.#failures += 1;
    this.#failed?.inc();
    this.#set(false);
    const why = sendError === undefined ? 'the broker acknowledged it but never delivered it back' : `publishing it failed: ${sendError.message}`;
    this.#o.log(`self-check failed (${this.#failures} in a row): canary request not back within ${this.#o.timeoutMs} ms (${why}); repairing`, 'warn');
    await this.#o.repair(this.#failures).catch((err: unknown) => this.#o.log(`self-check repair failed: ${err instanceof Error ? err.message : String(err)}`, 'warn'));
    return false;
  }

  #set(ok: boolean): void {
    this.#ok = ok;
    this.#okGauge?.set(ok ? 1 : 0);
  }
}
