import type Database from 'better-sqlite3';

/**
 * Segmented runs this gateway gave up after their run-open may have reached the platform
 * (failed: RUN_INCOMPLETE, the source gone, ...; or withdrawn), in the outbox's database.
 * A row is written in the transaction that ends the entry, so a run never ends without its
 * abandon on record; it is published (RunAbandonV1) until the platform answers for the run,
 * and kept after its entry is pruned until then.
 */
export const ABANDON_JOURNAL_SCHEMA = `
CREATE TABLE IF NOT EXISTS run_abandons (
  entry_id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  reason_message TEXT,
  at REAL NOT NULL,
  publishes INTEGER NOT NULL DEFAULT 0,
  last_published_at REAL,
  answered_at REAL
);
CREATE INDEX IF NOT EXISTS run_abandons_request ON run_abandons (request_id);
`;

/** Publishes of one abandon at most: a platform that predates run-abandon never answers it. */
export const MAX_ABANDON_PUBLISHES = 10;

export interface AbandonRecord {
  entryId: string;
  requestId: string;
  reason: { code: string; message?: string };
  at: number;
  /** Broker-acknowledged publishes so far. */
  publishes: number;
  lastPublishedAt: number | undefined;
  answeredAt: number | undefined;
}

interface Row {
  entry_id: string;
  request_id: string;
  reason_code: string;
  reason_message: string | null;
  at: number;
  publishes: number;
  last_published_at: number | null;
  answered_at: number | null;
}

const toRecord = (r: Row): AbandonRecord => ({
  entryId: r.entry_id,
  requestId: r.request_id,
  reason: { code: r.reason_code, ...(r.reason_message === null ? {} : { message: r.reason_message }) },
  at: r.at,
  publishes: r.publishes,
  lastPublishedAt: r.last_published_at ?? undefined,
  answeredAt: r.answered_at ?? undefined,
});

export class AbandonJournal {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Called inside the transaction that ends the entry; the first reason stands. */
  note(entryId: string, requestId: string, reason: { code: string; message: string }, at: number): void {
    this.#db.prepare('INSERT OR IGNORE INTO run_abandons (entry_id, request_id, reason_code, reason_message, at) VALUES (?, ?, ?, ?, ?)').run(entryId, requestId, reason.code, reason.message.slice(0, 500), at);
  }

  get(entryId: string): AbandonRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM run_abandons WHERE entry_id = ?').get(entryId) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Abandons to publish (again): not answered, not yet published MAX_ABANDON_PUBLISHES times. */
  due(): AbandonRecord[] {
    return (this.#db.prepare('SELECT * FROM run_abandons WHERE answered_at IS NULL AND publishes < ? ORDER BY at').all(MAX_ABANDON_PUBLISHES) as Row[]).map(toRecord);
  }

  published(entryId: string, at: number): void {
    this.#db.prepare('UPDATE run_abandons SET publishes = publishes + 1, last_published_at = ? WHERE entry_id = ?').run(at, entryId);
  }

  /** The platform answered for the run; the record answered, or undefined when none was waiting for it. */
  answered(requestId: string, at: number): AbandonRecord | undefined {
    return this.#db.transaction(() => {
      const row = this.#db.prepare('SELECT * FROM run_abandons WHERE request_id = ? AND answered_at IS NULL').get(requestId) as Row | undefined;
      if (row === undefined) return undefined;
      this.#db.prepare('UPDATE run_abandons SET answered_at = ? WHERE entry_id = ?').run(at, row.entry_id);
      return toRecord({ ...row, answered_at: at });
    }).immediate();
  }

  /** Drops the rows whose entry was pruned and that need nothing more (answered, or given up on). */
  pruneOrphans(): void {
    this.#db.prepare('DELETE FROM run_abandons WHERE (answered_at IS NOT NULL OR publishes >= ?) AND entry_id NOT IN (SELECT id FROM outbox)').run(MAX_ABANDON_PUBLISHES);
  }
}
