import { ArteriaError } from '@arteria/protocol';

/** Reconnect delays: exponential growth from `initialMs`, capped at `maxMs`. */
export interface BackoffSettings {
  initialMs: number;
  maxMs: number;
}

/** The largest delay of the `attempt`-th reconnect (0 = the first): initialMs * 2^attempt, capped. */
export function backoffCeilingMs(attempt: number, settings: BackoffSettings): number {
  // 2^31 already dwarfs any cap; bounding the exponent keeps the product finite.
  return Math.min(settings.maxMs, settings.initialMs * 2 ** Math.min(attempt, 31));
}

/**
 * "Full jitter": a delay drawn uniformly from [0, ceiling]. After a broker restart a
 * fleet's reconnects spread over the whole window instead of arriving together every
 * period, and a device that keeps failing waits longer each time, up to `maxMs`.
 */
export function reconnectDelayMs(attempt: number, settings: BackoffSettings, random: () => number = Math.random): number {
  return Math.round(random() * backoffCeilingMs(attempt, settings));
}

/** The attempt count of one connection: next() gives the coming delay, reset() after a good connection. */
export class ReconnectBackoff {
  #attempt = 0;
  readonly #settings: BackoffSettings;
  readonly #random: () => number;

  constructor(settings: BackoffSettings, random: () => number = Math.random) {
    if (!(settings.initialMs > 0) || settings.maxMs < settings.initialMs) throw new ArteriaError('CONFIG_INVALID', 'backoff: need 0 < initialMs <= maxMs');
    this.#settings = settings;
    this.#random = random;
  }

  get attempt(): number {
    return this.#attempt;
  }

  next(): number {
    const delay = reconnectDelayMs(this.#attempt, this.#settings, this.#random);
    this.#attempt += 1;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
