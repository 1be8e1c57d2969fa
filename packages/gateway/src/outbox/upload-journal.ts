import type Database from 'better-sqlite3';

export const UPLOAD_JOURNAL_SCHEMA = `
CREATE TABLE IF NOT EXISTS uploads (
  entry_id TEXT PRIMARY KEY,
  object_key TEXT NOT NULL,
  upload_id TEXT NOT NULL,
  part_size INTEGER NOT NULL,
  source_size INTEGER NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_parts (
  entry_id TEXT NOT NULL,
  part_number INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY (entry_id, part_number)
);
`;

export interface UploadRecord {
  entryId: string;
  key: string;
  uploadId: string;
  partSize: number;
  sourceSize: number;
  createdAt: number;
  /** Parts the store confirmed (its ETag), by part number. */
  parts: Map<number, { size: number; etag: string }>;
}

/** What an upload needs to remember across a crash; the outbox's journal or an in-memory one. */
export interface UploadJournalPort {
  get(entryId: string): UploadRecord | undefined;
  begin(record: Omit<UploadRecord, 'parts'>): void;
  confirmPart(entryId: string, partNumber: number, size: number, etag: string): void;
  forget(entryId: string): void;
}

interface UploadRow {
  entry_id: string;
  object_key: string;
  upload_id: string;
  part_size: number;
  source_size: number;
  created_at: number;
}

/**
 * The multipart uploads in progress, in the outbox's database: the upload id as soon as
 * the store created it (committed with the outbox's synchronous FULL), then every part
 * the store confirmed. Part confirmations go through a second connection with
 * synchronous NORMAL: committed to the WAL before the upload goes on (a killed process
 * loses none) but fsynced with the next FULL commit rather than each on its own, which
 * would stall every part in flight (better-sqlite3 is synchronous). A power cut can
 * forget the last confirmations; ListParts, not the journal, says what the store holds.
 */
export class UploadJournal implements UploadJournalPort {
  readonly #db: Database.Database;
  readonly #parts: Database.Database;

  /** `db`: the outbox's connection; `parts`: one to the same file for part confirmations. */
  constructor(db: Database.Database, parts: Database.Database = db) {
    this.#db = db;
    this.#parts = parts;
  }

  get(entryId: string): UploadRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM uploads WHERE entry_id = ?').get(entryId) as UploadRow | undefined;
    if (row === undefined) return undefined;
    const parts = this.#db.prepare('SELECT part_number, size, etag FROM upload_parts WHERE entry_id = ?').all(entryId) as { part_number: number; size: number; etag: string }[];
    return {
      entryId: row.entry_id,
      key: row.object_key,
      uploadId: row.upload_id,
      partSize: row.part_size,
      sourceSize: row.source_size,
      createdAt: row.created_at,
      parts: new Map(parts.map((p) => [p.part_number, { size: p.size, etag: p.etag }])),
    };
  }

  begin(record: Omit<UploadRecord, 'parts'>): void {
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM upload_parts WHERE entry_id = ?').run(record.entryId);
      this.#db
        .prepare('INSERT OR REPLACE INTO uploads (entry_id, object_key, upload_id, part_size, source_size, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(record.entryId, record.key, record.uploadId, record.partSize, record.sourceSize, record.createdAt);
    })();
  }

  confirmPart(entryId: string, partNumber: number, size: number, etag: string): void {
    this.#parts.prepare('INSERT OR REPLACE INTO upload_parts (entry_id, part_number, size, etag) VALUES (?, ?, ?, ?)').run(entryId, partNumber, size, etag);
  }

  forget(entryId: string): void {
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM upload_parts WHERE entry_id = ?').run(entryId);
      this.#db.prepare('DELETE FROM uploads WHERE entry_id = ?').run(entryId);
    })();
  }

  /** Every recorded upload (without parts), with whether its outbox entry still waits to be uploaded. */
  all(): { entryId: string; key: string; uploadId: string; createdAt: number; entryPending: boolean }[] {
    const rows = this.#db
      .prepare(`SELECT u.entry_id, u.object_key, u.upload_id, u.created_at, o.state FROM uploads u LEFT JOIN outbox o ON o.id = u.entry_id`)
      .all() as { entry_id: string; object_key: string; upload_id: string; created_at: number; state: string | null }[];
    return rows.map((r) => ({ entryId: r.entry_id, key: r.object_key, uploadId: r.upload_id, createdAt: r.created_at, entryPending: r.state === 'pending' }));
  }
}

/** A journal that lives as long as one call (uploads outside an outbox: nothing to resume after a crash). */
export function memoryJournal(): UploadJournalPort {
  const records = new Map<string, UploadRecord>();
  return {
    get: (entryId) => records.get(entryId),
    begin: (record) => void records.set(record.entryId, { ...record, parts: new Map() }),
    confirmPart: (entryId, partNumber, size, etag) => void records.get(entryId)?.parts.set(partNumber, { size, etag }),
    forget: (entryId) => void records.delete(entryId),
  };
}
