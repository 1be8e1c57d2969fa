import type { RequestLedger } from '@arteria/ports';
import type { MetricHistory } from '@arteria/telemetry';

/** Newest ledger entries read per poll: more results than this between two polls are undercounted. */
const WINDOW = 500;

/**
 * Feeds a cluster dashboard's history from the shared ledger: each poll reads the newest
 * results and records those not seen before, in the interval of their completion time
 * (so the first poll fills in the last hour as far as the window reaches).
 */
export class LedgerHistoryFeed {
  readonly #ledger: Pick<RequestLedger, 'recent'>;
  readonly #history: MetricHistory;
  /** Ids recorded, newest polls last; bounded to two windows. */
  #seen = new Set<string>();

  constructor(ledger: Pick<RequestLedger, 'recent'>, history: MetricHistory) {
    this.#ledger = ledger;
    this.#history = history;
  }

  async poll(): Promise<void> {
    const entries = await this.#ledger.recent(WINDOW);
    const next = new Set<string>();
    for (const entry of entries) {
      if (entry.state !== 'completed') continue;
      next.add(entry.requestId);
      if (!this.#seen.has(entry.requestId)) this.#history.observeResult(entry.result, entry.completedAt);
    }
    // Only the ids still in the window can come back in the next read.
    this.#seen = next;
  }
}
