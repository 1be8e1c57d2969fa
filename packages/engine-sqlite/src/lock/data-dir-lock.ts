import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ArteriaError } from '@arteria/protocol';

/** The lock file in a data dir. */
export const DATA_DIR_LOCK_FILE = 'platform.lock';

/**
 * One embedded platform per data dir. Two would share one queue, ledger, audit chain and
 * object folder, each leasing the other's tasks and appending to the same chain. The lock is
 * an exclusive SQLite transaction held open on a file in the data dir: the operating system
 * lets go of it when the process ends, however it ends (a SIGKILL or a power cut leaves no
 * stale lock), and a second holder in this process is refused as well.
 */
export class DataDirLock {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Takes the data dir's lock, or throws DATA_DIR_IN_USE. */
  static acquire(dataDir: string): DataDirLock {
    const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
    let db: Database.Database | undefined;
    try {
      mkdirSync(dataDir, { recursive: true });
      db = new Database(file);
      db.pragma('busy_timeout = 0'); // a held lock is an answer, not something to wait for
      db.exec('BEGIN EXCLUSIVE');
      return new DataDirLock(db);
    } catch (err) {
      db?.close();
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY') === true) {
        throw new ArteriaError('DATA_DIR_IN_USE', `another Arteria platform is running on the data dir ${dataDir} (it holds ${file}); stop it, or give this one a data dir of its own (--data-dir)`);
      }
      throw new ArteriaError('CONFIG_INVALID', `cannot lock the data dir ${dataDir} (${file}): ${(err as Error).message}`, { cause: err });
    }
  }

  /** Lets the next platform have the data dir. */
  release(): void {
    if (this.#db.open) this.#db.close();
  }
}
