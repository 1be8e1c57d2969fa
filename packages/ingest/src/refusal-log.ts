/** One request that ingest (or the broker in front of it) refused before it was queued. */
export interface Refusal {
  /** Epoch ms. */
  at: number;
  tenant: string;
  device: string;
  /** As the sender named it; `unknown` when the payload could not be read. */
  requestId: string;
  code: string;
  message: string;
}

export interface RefusalSummary {
  /** Refused since this process started. */
  total: number;
  byCode: Record<string, number>;
  /** Newest first. */
  recent: Refusal[];
}

/**
 * What ingest refused, in memory: a total, counts by code and the latest refusals, so an
 * operator can see why a device is turned away. Refused requests are not in the ledger
 * (it records only what was admitted: an id a sender chose must not touch another
 * request's entry), and writing each to disk would let a misconfigured device flood it.
 */
export class RefusalLog {
  #total = 0;
  readonly #byCode = new Map<string, number>();
  readonly #recent: Refusal[] = [];

  constructor(private readonly keep = 200) {}

  record(refusal: Refusal): void {
    this.#total += 1;
    this.#byCode.set(refusal.code, (this.#byCode.get(refusal.code) ?? 0) + 1);
    this.#recent.push({ ...refusal, message: refusal.message.slice(0, 500) });
    if (this.#recent.length > this.keep) this.#recent.shift();
  }

  get total(): number {
    return this.#total;
  }

  summary(limit = this.keep): RefusalSummary {
    return { total: this.#total, byCode: Object.fromEntries(this.#byCode), recent: this.#recent.slice(-limit).reverse() };
  }
}
