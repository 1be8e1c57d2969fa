import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { DeidentifiedUids, OriginalIdentity } from './deidentify.js';

export interface ReidentificationRecord {
  deidentified: DeidentifiedUids;
  original: OriginalIdentity;
  createdAt: number;
}

interface Row {
  deid_study_uid: string;
  deid_series_uid: string;
  deid_sop_uid: string;
  original_json: string;
  created_at: number;
}

/**
 * The on-site mapping from pseudonymous UIDs back to the original study and patient.
 * It lives in its own SQLite file next to the outbox and is never uploaded: without it
 * (and the key) nothing in the cloud points back to a patient.
 */
export class ReidentificationStore {
  readonly #db: Database.Database;
  #closed = false;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  static open(path: string): ReidentificationStore {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE IF NOT EXISTS reidentification (
      deid_sop_uid TEXT PRIMARY KEY,
      deid_series_uid TEXT NOT NULL,
      deid_study_uid TEXT NOT NULL,
      original_json TEXT NOT NULL,
      created_at REAL NOT NULL
    )`);
    return new ReidentificationStore(db);
  }

  /** Records a mapping; the same de-identified instance (a resend) overwrites its own row. */
  put(deidentified: DeidentifiedUids, original: OriginalIdentity, now: number): void {
    this.#db
      .prepare('INSERT OR REPLACE INTO reidentification (deid_sop_uid, deid_series_uid, deid_study_uid, original_json, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(deidentified.sopInstanceUid, deidentified.seriesInstanceUid, deidentified.studyInstanceUid, JSON.stringify(original), now);
  }

  /** The original identity behind a de-identified SOP Instance UID. */
  get(deidentifiedSopInstanceUid: string): ReidentificationRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM reidentification WHERE deid_sop_uid = ?').get(deidentifiedSopInstanceUid) as Row | undefined;
    if (row === undefined) return undefined;
    return {
      deidentified: { studyInstanceUid: row.deid_study_uid, seriesInstanceUid: row.deid_series_uid, sopInstanceUid: row.deid_sop_uid },
      original: JSON.parse(row.original_json) as OriginalIdentity,
      createdAt: row.created_at,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
