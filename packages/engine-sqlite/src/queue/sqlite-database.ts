import { chmodSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ArteriaError, type ErrorCode } from '@arteria/protocol';

export type SqliteDatabase = Database.Database;

/**
 * `FULL` syncs the WAL on every commit: nothing acknowledged is lost, even on power loss.
 * `NORMAL` syncs only at checkpoints: a process crash loses nothing, but a power loss or
 * OS crash may lose the last commits. Roughly 10x more commits per second.
 */
export type SqliteSynchronous = 'FULL' | 'NORMAL';

/** How long a connection waits for another process's write lock before failing. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens a SQLite file for sharing between components and processes: WAL journal (readers
 * never block the writer), busy timeout (writers queue instead of failing at once).
 * Failures are reported as `errorCode`, which names the component that needed the file.
 */
export function openSqlite(path: string, synchronous: SqliteSynchronous, errorCode: ErrorCode): SqliteDatabase {
  let db: SqliteDatabase | undefined;
  try {
    db = new Database(path);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    toWal(db);
    db.pragma(`synchronous = ${synchronous}`);
    restrictToOwner(path);
    return db;
  } catch (err) {
    db?.close();
    throw new ArteriaError(errorCode, `cannot open SQLite database ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Switches a new file to WAL. The switch takes an exclusive lock and SQLite does not wait
 * for it when waiting could deadlock (several processes opening one new file at once, each
 * holding its read lock), so it answers SQLITE_BUSY at once: it is tried again, with short
 * sleeps, until the busy timeout. Once one process has switched, the others' switch is a
 * no-op. Blocking is fine here: the constructors that open files are synchronous too.
 */
function toWal(db: SqliteDatabase): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let pauseMs = 2; ; pauseMs = Math.min(pauseMs * 2, 50)) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if (!isBusy(err) || Date.now() + pauseMs > deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
    }
  }
}

function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY');
}

/**
 * A runner for single commits at `level` on a connection opened at `opened`: it switches the
 * connection's setting around the commit and back (the setting is the connection's, and
 * nothing else runs on it in between). The same level runs the commit as it is.
 */
export function commitsAt(db: SqliteDatabase, level: SqliteSynchronous, opened: SqliteSynchronous): <T>(fn: () => T) => T {
  if (level === opened) return (fn) => fn();
  const switchTo = db.prepare(`PRAGMA synchronous = ${level}`);
  const switchBack = db.prepare(`PRAGMA synchronous = ${opened}`);
  return (fn) => {
    switchTo.run();
    try {
      return fn();
    } finally {
      switchBack.run();
    }
  };
}

/** Runs synchronous database work as a promise: a throw becomes a rejection. */
export function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}

/**
 * The queue and ledger hold requests and results: readable by the platform's own user
 * only (0600), the WAL and shared-memory files too.
 */
function restrictToOwner(path: string): void {
  if (path === ':memory:' || path === '') return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(file, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
