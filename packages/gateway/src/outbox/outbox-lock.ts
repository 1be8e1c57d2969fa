import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ArteriaError } from '@arteria/protocol';
import { runningGateway } from '../local-status.js';

/** The lock file beside an outbox. */
export const outboxLockPath = (outboxPath: string): string => `${outboxPath}.lock`;

/**
 * One running gateway per outbox. Two would both resume, upload and publish the same runs
 * and race on their states (a second `arteria-gateway` started by hand beside the service,
 * or two services given one outboxPath). The lock is an exclusive SQLite transaction held
 * open on a file beside the outbox: the operating system lets go of it when the process
 * ends, however it ends (a SIGKILL or a power cut leaves no stale lock to clean up), and a
 * second holder in this process is refused as well.
 */
export class OutboxLock {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Takes the outbox's lock, or throws GATEWAY_ALREADY_RUNNING naming the gateway that holds it. */
  static async acquire(outboxPath: string): Promise<OutboxLock> {
    const path = outboxLockPath(outboxPath);
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new Database(path);
      db.pragma('busy_timeout = 0'); // a held lock is an answer, not something to wait for
      db.exec('BEGIN EXCLUSIVE');
      return new OutboxLock(db);
    } catch (err) {
      db?.close();
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY') === true) {
        // The pid as the running gateway's status file says (what `arteria-gateway doctor` reads), for the message only.
        const holder = await runningGateway(outboxPath);
        throw new ArteriaError('GATEWAY_ALREADY_RUNNING', `another gateway${holder === undefined ? '' : ` (pid ${holder.pid})`} is running on the outbox ${outboxPath} (it holds ${path}); stop it, or give this gateway an outboxPath of its own`);
      }
      throw new ArteriaError('CONFIG_INVALID', `cannot lock the outbox ${outboxPath} (${path}): ${(err as Error).message}`, { cause: err });
    }
  }

  /** Lets the next gateway have the outbox. */
  release(): void {
    if (this.#db.open) this.#db.close();
  }
}
