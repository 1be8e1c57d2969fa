import { z } from 'zod';
import { ArteriaError, type DeviceAddress } from '@arteria/protocol';

/** Admission rate per device: a token bucket. `perMinute` 0 turns the limit off. */
export const AdmissionRate = z.strictObject({
  /** New requests a device may have admitted per minute, sustained. */
  perMinute: z.number().int().min(0).default(600),
  /** New requests admitted at once after a quiet spell (a burst of runs in a procedure). */
  burst: z.number().int().min(1).default(120),
});
export type AdmissionRate = z.infer<typeof AdmissionRate>;

/** Upload grant requests per device: a run of a few GB asks for a handful (64 part URLs each). */
export const GrantRate = z.strictObject({
  perMinute: z.number().int().min(0).default(600),
  burst: z.number().int().min(1).default(240),
});
export type GrantRate = z.infer<typeof GrantRate>;

interface Bucket {
  tokens: number;
  at: number;
  /** Whether a take was refused since the bucket was last full (the first refusal of a spell is told apart). */
  refused: boolean;
}

/** What `tryTake` gave: a token, the first refusal of a spell (since the bucket was last full), or a later one. */
export type Taken = 'taken' | 'first-refused' | 'refused';

const keyOf = (device: DeviceAddress): string => `${device.tenant}/${device.device}`;

/** Idle buckets are full anyway; keeping at most this many bounds memory under id spraying. */
const MAX_BUCKETS = 100_000;

/**
 * Per-device admission limit. Only new requests take a token (resends and copies of a
 * request already admitted are free), so a flood of junk from one device stops before
 * the ledger while that device's real resends, and every other device, go on.
 * Each ingest process keeps its own buckets: with N processes a device may get up to N
 * times the rate, which still bounds it.
 */
export class AdmissionRateLimiter {
  readonly #rate: AdmissionRate;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  readonly #what: string;

  /** `what` names what is counted in the RATE_LIMITED message (default: new requests). */
  constructor(rate: Partial<AdmissionRate> = {}, now: () => number = Date.now, what = 'new requests') {
    this.#rate = AdmissionRate.parse(rate);
    this.#now = now;
    this.#what = what;
  }

  /** Takes a token for one new request (or grant request) from `device`, or throws RATE_LIMITED saying when to come back. */
  take(device: DeviceAddress): void {
    if (this.tryTake(device) !== 'taken') throw this.limited(device);
  }

  /** Takes a token from `device`'s bucket if it has one; else says whether this is the first refusal since it was last full. */
  tryTake(device: DeviceAddress): Taken {
    const { perMinute, burst } = this.#rate;
    if (perMinute === 0) return 'taken';
    const key = keyOf(device);
    const now = this.#now();
    const perMs = perMinute / 60_000;
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now, refused: false };
    bucket.tokens = Math.min(burst, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    // A spell of refusals ends when the device has been quiet long enough to fill its bucket
    // again, not at each token it regains meanwhile (one more "first" refusal every token).
    if (bucket.tokens >= burst) bucket.refused = false;
    // Most recently used last: the first entries are the longest idle.
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > MAX_BUCKETS) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 'taken';
    }
    if (bucket.refused) return 'refused';
    bucket.refused = true;
    return 'first-refused';
  }

  /** RATE_LIMITED for `device` (after a refused take), saying when its next token comes: what `take` throws. */
  limited(device: DeviceAddress): ArteriaError {
    const { perMinute, burst } = this.#rate;
    const key = keyOf(device);
    const perMs = perMinute / 60_000;
    const retryAfterMs = Math.ceil((1 - (this.#buckets.get(key)?.tokens ?? 0)) / perMs);
    return new ArteriaError('RATE_LIMITED', `device ${key} sent more than ${burst} ${this.#what} at once or ${perMinute} per minute; retry after ${retryAfterMs} ms`);
  }
}
