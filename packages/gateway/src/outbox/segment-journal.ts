import type Database from 'better-sqlite3';
import type { PartialResultV1, SegmentEncoding } from '@arteria/protocol';

/**
 * What a segmented run has done so far, in the outbox's database: its header object, its
 * run-open, and each segment (cut, uploaded, then announced). The outbox entry holds the
 * run's state (pending while it streams); these rows say where inside that state it is, so
 * a gateway restarted mid-stream neither uploads nor announces anything twice. A segment is
 * recorded when it is cut, before its upload (frames, object, size, SHA-256): a gateway
 * stopped while the upload was on its way, or after the store stored it and before that was
 * recorded, uploads exactly the same bytes to the same key again, which the store already
 * holding them counts as done (put-once.ts).
 */
export const SEGMENT_JOURNAL_SCHEMA = `
CREATE TABLE IF NOT EXISTS segmented_runs (
  entry_id TEXT PRIMARY KEY,
  header_path TEXT NOT NULL,
  pixel_offset INTEGER NOT NULL,
  frame_bytes INTEGER NOT NULL,
  planned_frames INTEGER,
  frames_per_segment INTEGER NOT NULL,
  stable_after_ms REAL NOT NULL,
  end_when_stable INTEGER NOT NULL,
  ended_frames INTEGER,
  header_uri TEXT NOT NULL,
  header_size INTEGER NOT NULL,
  header_sha256 TEXT NOT NULL,
  open_json TEXT NOT NULL,
  header_uploaded_at REAL,
  open_announced_at REAL,
  whole_file INTEGER NOT NULL DEFAULT 0,
  fallback_at REAL
);
CREATE TABLE IF NOT EXISTS run_segments (
  entry_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  first_frame INTEGER NOT NULL,
  frame_count INTEGER NOT NULL,
  uri TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  acquired REAL NOT NULL,
  uploaded_at REAL,
  announced_at REAL,
  announcements INTEGER NOT NULL DEFAULT 0,
  encoding TEXT,
  PRIMARY KEY (entry_id, idx)
);
CREATE TABLE IF NOT EXISTS run_partials (
  entry_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  partial_json TEXT NOT NULL,
  PRIMARY KEY (entry_id, seq)
);
`;

export interface NewSegmentedRun {
  entryId: string;
  /** The header object's bytes, spooled (already de-identified when de-identification is on). */
  headerPath: string;
  /** Where frame 0 starts in the entry's source file. */
  pixelOffset: number;
  frameBytes: number;
  /** Frames the source's Pixel Data length announces (a file that ends when they are all there); undefined for a frame source. */
  plannedFrames: number | undefined;
  framesPerSegment: number;
  /** How long the source may stop growing before the run ends (endWhenStable) or fails (RUN_INCOMPLETE). */
  stableAfterMs: number;
  endWhenStable: boolean;
  headerUri: string;
  headerSize: number;
  headerSha256: string;
  /** The RunOpenV1 as JSON (timings.published stamped at each publish). */
  openJson: string;
  /** A complete file handed to send() and sent in segments: sent whole instead when the platform answers NOT_INCREMENTAL. */
  wholeFile?: boolean;
}

export interface SegmentedRunRecord extends NewSegmentedRun {
  /** Frames an explicit end said the run has. */
  endedFrames: number | undefined;
  headerUploadedAt: number | undefined;
  openAnnouncedAt: number | undefined;
  wholeFile: boolean;
  /** When the platform answered NOT_INCREMENTAL to a whole file sent in segments: it is to be sent whole. */
  fallbackAt: number | undefined;
}

export interface SegmentRecord {
  index: number;
  firstFrame: number;
  frameCount: number;
  uri: string;
  /** The stored object's size and SHA-256 (its bytes as encoded). */
  size: number;
  sha256: string;
  /** How the object encodes the frames (SegmentRef.encoding); undefined: the frames as they are. */
  encoding?: SegmentEncoding | undefined;
  /** When the gateway had the segment's last frame. */
  acquired: number;
  /** When the store confirmed the object; undefined while its upload is on its way (or to be done again after a restart). */
  uploadedAt: number | undefined;
  announcedAt: number | undefined;
  /** Broker-acknowledged publishes of this segment (1 unless the platform asked for the run again). */
  announcements: number;
}

/** A record as SQLite returns it: NULL where the record has undefined. */
type Stored<T> = { [K in keyof T]-?: undefined extends T[K] ? Exclude<T[K], undefined> | null : T[K] };

/** The columns under the record's field names, so a row needs only its NULLs turned into undefined. */
const RUN_COLUMNS = `entry_id AS entryId, header_path AS headerPath, pixel_offset AS pixelOffset, frame_bytes AS frameBytes,
  planned_frames AS plannedFrames, frames_per_segment AS framesPerSegment, stable_after_ms AS stableAfterMs,
  end_when_stable AS endWhenStable, ended_frames AS endedFrames, header_uri AS headerUri, header_size AS headerSize,
  header_sha256 AS headerSha256, open_json AS openJson, header_uploaded_at AS headerUploadedAt, open_announced_at AS openAnnouncedAt,
  whole_file AS wholeFile, fallback_at AS fallbackAt`;
const SEGMENT_COLUMNS = `idx AS "index", first_frame AS firstFrame, frame_count AS frameCount, uri, size, sha256, encoding, acquired,
  uploaded_at AS uploadedAt, announced_at AS announcedAt, announcements`;

function fromStored<T>(row: Stored<T>): T {
  const record: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) record[key] = value ?? undefined;
  return record as T;
}

/**
 * Outboxes written before segments were recorded when cut hold only uploaded segments:
 * the column is added and their rows marked uploaded.
 */
export function migrateSegmentJournal(db: Database.Database): void {
  const runColumns = new Set((db.prepare('PRAGMA table_info(segmented_runs)').all() as { name: string }[]).map((c) => c.name));
  if (!runColumns.has('whole_file')) db.exec('ALTER TABLE segmented_runs ADD COLUMN whole_file INTEGER NOT NULL DEFAULT 0');
  if (!runColumns.has('fallback_at')) db.exec('ALTER TABLE segmented_runs ADD COLUMN fallback_at REAL');
  const columns = new Set((db.prepare('PRAGMA table_info(run_segments)').all() as { name: string }[]).map((c) => c.name));
  if (!columns.has('encoding')) db.exec('ALTER TABLE run_segments ADD COLUMN encoding TEXT');
  if (columns.has('uploaded_at')) return;
  db.transaction(() => {
    db.exec('ALTER TABLE run_segments ADD COLUMN uploaded_at REAL');
    db.exec('UPDATE run_segments SET uploaded_at = acquired');
  }).immediate();
}

/**
 * Each write is its own committed statement: a step is recorded once it is done, never
 * before. A segment's upload and announcement are written through `lightDb` (the same file,
 * synchronous NORMAL, as the multipart journal's parts): each FULL commit cost an fsync of
 * 5-20 ms that blocked the gateway's event loop, twice per segment (1.2 s of a 419 MB run
 * in 16 MiB segments on the loaded 2-core machine, with the cut's). A process killed loses
 * none of them; a power cut may lose the last few, which costs the segment's upload again
 * (put-once.ts counts the stored object) or its announcement again (the platform drops
 * the copy by index). The cut stays FULL: a live run's next cut may hold other frames.
 */
export class SegmentJournal {
  readonly #db: Database.Database;
  readonly #lightDb: Database.Database;

  constructor(db: Database.Database, lightDb: Database.Database = db) {
    this.#db = db;
    this.#lightDb = lightDb;
  }

  /** Written in the transaction that adds the run's outbox entry. */
  create(run: NewSegmentedRun): void {
    this.#db
      .prepare(
        `INSERT INTO segmented_runs (entry_id, header_path, pixel_offset, frame_bytes, planned_frames, frames_per_segment, stable_after_ms,
           end_when_stable, header_uri, header_size, header_sha256, open_json, whole_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(run.entryId, run.headerPath, run.pixelOffset, run.frameBytes, run.plannedFrames ?? null, run.framesPerSegment, run.stableAfterMs,
        run.endWhenStable ? 1 : 0, run.headerUri, run.headerSize, run.headerSha256, run.openJson, run.wholeFile === true ? 1 : 0);
  }

  get(entryId: string): SegmentedRunRecord | undefined {
    const row = this.#db.prepare(`SELECT ${RUN_COLUMNS} FROM segmented_runs WHERE entry_id = ?`).get(entryId) as
      | Stored<Omit<SegmentedRunRecord, 'endWhenStable' | 'wholeFile'> & { endWhenStable: number; wholeFile: number }>
      | undefined;
    return row === undefined ? undefined : { ...fromStored(row), endWhenStable: row.endWhenStable === 1, wholeFile: row.wholeFile === 1 };
  }

  /**
   * The platform cannot run this whole file in segments (NOT_INCREMENTAL): it is to be sent
   * whole. Committed before anything else happens, so a restart goes on with the fallback.
   */
  markFallback(entryId: string, at: number): void {
    this.#db.prepare('UPDATE segmented_runs SET fallback_at = COALESCE(fallback_at, ?) WHERE entry_id = ?').run(at, entryId);
  }

  /** Entries of live runs marked to be sent whole, oldest first. */
  fallingBack(): string[] {
    const rows = this.#db
      .prepare(`SELECT r.entry_id AS id FROM segmented_runs r JOIN outbox o ON o.id = r.entry_id
                WHERE r.fallback_at IS NOT NULL AND o.kind = 'segmented' AND o.state IN ('pending', 'uploaded', 'published') ORDER BY o.seq`)
      .all() as { id: string }[];
    return rows.map((r) => r.id);
  }

  /** The run is sent whole now: its segmented rows go (in the transaction that makes its entry a whole file). */
  forget(entryId: string): void {
    for (const table of ['segmented_runs', 'run_segments', 'run_partials']) this.#db.prepare(`DELETE FROM ${table} WHERE entry_id = ?`).run(entryId);
  }

  headerUploaded(entryId: string, at: number): void {
    this.#db.prepare('UPDATE segmented_runs SET header_uploaded_at = COALESCE(header_uploaded_at, ?) WHERE entry_id = ?').run(at, entryId);
  }

  openAnnounced(entryId: string, at: number): void {
    this.#db.prepare('UPDATE segmented_runs SET open_announced_at = ? WHERE entry_id = ?').run(at, entryId);
  }

  /** An explicit end: the run has `frames` frames (the frames already written, or more to come). */
  end(entryId: string, frames: number): void {
    this.#db.prepare('UPDATE segmented_runs SET ended_frames = ? WHERE entry_id = ?').run(frames, entryId);
  }

  /** Records a segment just cut (not yet uploaded); its index must be the next one. */
  segmentCut(entryId: string, segment: Omit<SegmentRecord, 'uploadedAt' | 'announcedAt' | 'announcements'>): void {
    this.#db
      .prepare('INSERT INTO run_segments (entry_id, idx, first_frame, frame_count, uri, size, sha256, encoding, acquired) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(entryId, segment.index, segment.firstFrame, segment.frameCount, segment.uri, segment.size, segment.sha256, segment.encoding ?? null, segment.acquired);
  }

  /** The store holds the segment's object. */
  segmentUploaded(entryId: string, index: number, at: number): void {
    this.#lightDb.prepare('UPDATE run_segments SET uploaded_at = COALESCE(uploaded_at, ?) WHERE entry_id = ? AND idx = ?').run(at, entryId, index);
  }

  segmentAnnounced(entryId: string, index: number, at: number): void {
    this.#lightDb.prepare('UPDATE run_segments SET announced_at = ?, announcements = announcements + 1 WHERE entry_id = ? AND idx = ?').run(at, entryId, index);
  }

  segments(entryId: string): SegmentRecord[] {
    const rows = this.#db.prepare(`SELECT ${SEGMENT_COLUMNS} FROM run_segments WHERE entry_id = ? ORDER BY idx`).all(entryId) as Stored<SegmentRecord>[];
    return rows.map((row) => fromStored(row));
  }

  /** The platform holds no open run of this id: the run-open and every segment are to be announced again. */
  forgetAnnouncements(entryId: string): void {
    this.#db.transaction(() => {
      this.#db.prepare('UPDATE segmented_runs SET open_announced_at = NULL WHERE entry_id = ?').run(entryId);
      this.#db.prepare('UPDATE run_segments SET announced_at = NULL WHERE entry_id = ?').run(entryId);
    }).immediate();
  }

  /** Keeps a partial result; false when this run's `seq` was already kept (a replaced worker sent it again). */
  keepPartial(entryId: string, partial: PartialResultV1): boolean {
    return this.#db.prepare('INSERT OR IGNORE INTO run_partials (entry_id, seq, partial_json) VALUES (?, ?, ?)').run(entryId, partial.seq, JSON.stringify(partial)).changes === 1;
  }

  /** Drops the rows of runs whose outbox entry was pruned (called inside the outbox's prune). */
  pruneOrphans(): void {
    for (const table of ['segmented_runs', 'run_segments', 'run_partials']) this.#db.prepare(`DELETE FROM ${table} WHERE entry_id NOT IN (SELECT id FROM outbox)`).run();
  }
}
