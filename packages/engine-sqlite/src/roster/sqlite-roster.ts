import { Lifecycle } from '@arteria/protocol';
import { DesiredWorkers, ROSTER_STALE_AFTER_MS, WorkerHeartbeat, checkedRosterEntry, type RosterView, type WorkerRoster } from '@arteria/ports';
import { openSqlite, settle, type SqliteDatabase } from '../queue/sqlite-database.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS roster (
  kind TEXT NOT NULL CHECK (kind IN ('worker', 'desired')),
  key TEXT NOT NULL,
  at REAL NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (kind, key)
);
`;

export interface SqliteWorkerRosterOptions {
  /** Database file; usually the deployment's queue and ledger file (a table of its own). */
  path: string;
  staleAfterMs?: number;
}

/**
 * The worker roster in a SQLite table, for roles on one machine sharing the deployment's
 * file. A heartbeat is an upsert (a few hundred bytes every few seconds per worker: WAL,
 * `NORMAL` sync, as losing the last beat to a power cut costs nothing); reading drops the
 * stale rows.
 */
export class SqliteWorkerRoster implements WorkerRoster {
  readonly #db: SqliteDatabase;
  readonly #staleAfterMs: number;
  readonly #life = new Lifecycle('the worker roster');

  constructor(options: SqliteWorkerRosterOptions) {
    const db = openSqlite(options.path, 'NORMAL', 'INTERNAL');
    this.#db = db;
    this.#life.defer('database', () => void db.close());
    this.#life.begin();
    this.#db.exec(SCHEMA);
    this.#staleAfterMs = options.staleAfterMs ?? ROSTER_STALE_AFTER_MS;
  }

  async beat(worker: WorkerHeartbeat): Promise<void> {
    return this.#put('worker', worker.instanceId, checkedRosterEntry(WorkerHeartbeat, worker));
  }

  leave(instanceId: string): Promise<void> {
    return settle(() => void this.#open().prepare("DELETE FROM roster WHERE kind = 'worker' AND key = ?").run(instanceId));
  }

  async recordDesired(desired: DesiredWorkers): Promise<void> {
    return this.#put('desired', desired.pool, checkedRosterEntry(DesiredWorkers, desired));
  }

  read(now = Date.now()): Promise<RosterView> {
    return settle(() => {
      const db = this.#open();
      const since = now - this.#staleAfterMs;
      db.prepare('DELETE FROM roster WHERE at < ?').run(since);
      const rows = db.prepare('SELECT kind, body FROM roster WHERE at >= ? ORDER BY kind, key').all(since) as { kind: 'worker' | 'desired'; body: string }[];
      const view: RosterView = { workers: [], desired: [] };
      for (const row of rows) {
        const body: unknown = JSON.parse(row.body);
        if (row.kind === 'worker') view.workers.push(WorkerHeartbeat.parse(body));
        else view.desired.push(DesiredWorkers.parse(body));
      }
      return view;
    });
  }

  /** Closes the database; memoised. Afterwards every call fails with ILLEGAL_STATE. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #put(kind: 'worker' | 'desired', key: string, body: WorkerHeartbeat | DesiredWorkers): Promise<void> {
    return settle(() => void this.#open().prepare('INSERT INTO roster (kind, key, at, body) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET at = excluded.at, body = excluded.body').run(kind, key, body.at, JSON.stringify(body)));
  }

  #open(): SqliteDatabase {
    this.#life.assertRunning('use the worker roster');
    return this.#db;
  }
}
