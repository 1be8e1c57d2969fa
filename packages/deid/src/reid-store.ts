import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ArteriaError } from '@arteria/protocol';
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
 * (and the key) nothing in the cloud points back to a patient. The file is 0600 and each
 * original identity is sealed with AES-256-GCM under a key derived from the site's
 * de-identification key, so a copy of the file alone reveals no patient.
 */
export class ReidentificationStore {
  readonly #db: Database.Database;
  readonly #key: Buffer;
  #closed = false;

  private constructor(db: Database.Database, key: Buffer) {
    this.#db = db;
    this.#key = key;
  }

  /** `key`: 32 bytes (DeidentificationKey.storeKey()). */
  static open(path: string, key: Buffer): ReidentificationStore {
    if (key.byteLength !== 32) throw new ArteriaError('CONFIG_INVALID', `the re-identification store key must be 32 bytes, got ${key.byteLength}`);
    mkdirSync(dirname(path), { recursive: true });
    // Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
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
    return new ReidentificationStore(db, key);
  }

  #seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64')}`;
  }

  #open(stored: string): string {
    if (!stored.startsWith('v1:')) return stored; // written before sealing: plain JSON
    const raw = Buffer.from(stored.slice(3), 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new ArteriaError('CONFIG_INVALID', 'a re-identification record does not open with this site key (another site\'s key, or a changed record)', { cause: err });
    }
  }

  /** Records a mapping; the same de-identified instance (a resend) overwrites its own row. */
  put(deidentified: DeidentifiedUids, original: OriginalIdentity, now: number): void {
    this.#db
      .prepare('INSERT OR REPLACE INTO reidentification (deid_sop_uid, deid_series_uid, deid_study_uid, original_json, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(deidentified.sopInstanceUid, deidentified.seriesInstanceUid, deidentified.studyInstanceUid, this.#seal(JSON.stringify(original)), now);
  }

  /** The original identity behind a de-identified SOP Instance UID. */
  get(deidentifiedSopInstanceUid: string): ReidentificationRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM reidentification WHERE deid_sop_uid = ?').get(deidentifiedSopInstanceUid) as Row | undefined;
    if (row === undefined) return undefined;
    return {
      deidentified: { studyInstanceUid: row.deid_study_uid, seriesInstanceUid: row.deid_series_uid, sopInstanceUid: row.deid_sop_uid },
      original: JSON.parse(this.#open(row.original_json)) as OriginalIdentity,
      createdAt: row.created_at,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
