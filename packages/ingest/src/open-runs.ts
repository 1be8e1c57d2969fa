import { ArteriaError, toArteriaError, type RequestV1 } from '@arteria/protocol';
import type { RequestLedger } from '@arteria/ports';

/** Segmented runs one device may hold open at once, by default. */
export const DEFAULT_MAX_OPEN_RUNS_PER_DEVICE = 8;

/**
 * Per-device cap on open segmented runs: each holds a checkpoint, parked segments and a
 * live state on the platform until it ends, is abandoned or expires, so a device that
 * opens runs without end would otherwise hold platform memory and storage without bound.
 * A new run-open beyond the cap is refused TOO_MANY_OPEN_RUNS before anything is recorded.
 *
 * The runs each device opened through this process are kept here; a run is open until its
 * result is recorded (its end, abandonment or expiry all record one). The ledger is asked
 * only when a device is at the cap, for the runs it holds: those answered (or never
 * recorded) free their slots. Each ingest process keeps its own count, and a restarted
 * one starts from none: with N processes a device may hold up to N times the cap, which
 * still bounds it.
 */
export class OpenRunLimit {
  readonly #max: number;
  readonly #ledger: Pick<RequestLedger, 'get'>;
  /** Run ids by `tenant/device`. */
  readonly #open = new Map<string, Set<string>>();

  /** `max` 0 turns the cap off. */
  constructor(max: number, ledger: Pick<RequestLedger, 'get'>) {
    this.#max = max;
    this.#ledger = ledger;
  }

  /** Takes a slot for a run-open the ledger has not seen; throws TOO_MANY_OPEN_RUNS when its device holds the cap. */
  async take(request: RequestV1): Promise<void> {
    if (this.#max === 0) return;
    const key = `${request.tenant}/${request.device}`;
    const runs = this.#open.get(key) ?? new Set<string>();
    if (runs.has(request.id)) return;
    if (runs.size >= this.#max) await this.#prune(runs);
    if (runs.size >= this.#max) {
      throw new ArteriaError(
        'TOO_MANY_OPEN_RUNS',
        `device ${key} holds ${runs.size} segmented runs open, the most a device may (${this.#max}); end or abandon one, or send this run whole`,
      );
    }
    runs.add(request.id);
    this.#open.set(key, runs);
  }

  /** Open runs held for a device (for tests and operators). */
  held(tenant: string, device: string): number {
    return this.#open.get(`${tenant}/${device}`)?.size ?? 0;
  }

  /** Forgets the runs whose result is recorded, or that the ledger does not hold (their acceptance was never recorded). */
  async #prune(runs: Set<string>): Promise<void> {
    for (const id of [...runs]) {
      let open: boolean;
      try {
        open = (await this.#ledger.get(id))?.state === 'accepted';
      } catch (err) {
        // A record that fails its chain check is not served, and not a run in progress either.
        if (toArteriaError(err).code !== 'LEDGER_TAMPERED') throw err;
        open = false;
      }
      if (!open) runs.delete(id);
    }
  }
}
