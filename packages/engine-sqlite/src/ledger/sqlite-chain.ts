import type { SqliteDatabase } from '../queue/sqlite-database.js';
import { nextRecord, type ChainKind, type ChainRecord, type Checkpoint } from '@arteria/ports';

/**
 * The chain and checkpoint tables of the SQLite ledger. Triggers refuse UPDATE and DELETE
 * so the platform's own code cannot rewrite history by mistake; someone editing the file
 * can drop them, which is what the chain and the signed checkpoints are for.
 *
 * No index by request: each lookup row names the seq of its records (an index on random
 * request ids costs every append a page write of its own). Files made before keep theirs,
 * which serves their rows that name no seq.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_chain (
  seq INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  request_id TEXT NOT NULL,
  recorded_at REAL NOT NULL,
  worker TEXT,
  body TEXT NOT NULL,
  body_hash TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  signature TEXT
);
CREATE TRIGGER IF NOT EXISTS ledger_chain_no_update BEFORE UPDATE ON ledger_chain
  BEGIN SELECT RAISE(ABORT, 'the ledger chain is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_chain_no_delete BEFORE DELETE ON ledger_chain
  BEGIN SELECT RAISE(ABORT, 'the ledger chain is append-only'); END;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
  seq INTEGER PRIMARY KEY,
  hash TEXT NOT NULL,
  signed_at REAL NOT NULL,
  key_id TEXT NOT NULL,
  public_key TEXT NOT NULL,
  signature TEXT NOT NULL
);
`;

interface ChainRow {
  seq: number;
  kind: ChainKind;
  request_id: string;
  recorded_at: number;
  worker: string | null;
  body: string;
  body_hash: string;
  prev_hash: string;
  hash: string;
  signature: string | null;
}

interface CheckpointRow {
  seq: number;
  hash: string;
  signed_at: number;
  key_id: string;
  public_key: string;
  signature: string;
}

const toRecord = (row: ChainRow): ChainRecord => ({
  seq: row.seq,
  kind: row.kind,
  requestId: row.request_id,
  recordedAt: row.recorded_at,
  ...(row.worker !== null ? { worker: row.worker } : {}),
  body: row.body,
  bodyHash: row.body_hash,
  prevHash: row.prev_hash,
  hash: row.hash,
  ...(row.signature !== null ? { signature: row.signature } : {}),
});

const toCheckpoint = (row: CheckpointRow): Checkpoint => ({
  seq: row.seq,
  hash: row.hash,
  signedAt: row.signed_at,
  keyId: row.key_id,
  publicKey: row.public_key,
  signature: row.signature,
});

export class SqliteChain {
  private readonly stmt;

  constructor(db: SqliteDatabase) {
    db.exec(SCHEMA);
    this.stmt = {
      // Only what the next record links to: the head's body can be a whole request.
      head: db.prepare<[], Pick<ChainRow, 'seq' | 'hash'>>('SELECT seq, hash FROM ledger_chain ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare<[number, string, string, number, string | null, string, string, string, string, string | null]>(
        'INSERT INTO ledger_chain (seq, kind, request_id, recorded_at, worker, body, body_hash, prev_hash, hash, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      of: db.prepare<[string, string], ChainRow>('SELECT * FROM ledger_chain WHERE request_id = ? AND kind = ? ORDER BY seq LIMIT 1'),
      at: db.prepare<[number], ChainRow>('SELECT * FROM ledger_chain WHERE seq = ?'),
      ofRequest: db.prepare<[string], ChainRow>('SELECT * FROM ledger_chain WHERE request_id = ? ORDER BY seq'),
      // Only the link: the next record's body can be a whole request.
      after: db.prepare<[number], { seq: number; prev_hash: string }>('SELECT seq, prev_hash FROM ledger_chain WHERE seq > ? ORDER BY seq LIMIT 1'),
      all: db.prepare<[], ChainRow>('SELECT * FROM ledger_chain ORDER BY seq'),
      // What a checkpoint checks: seals, not bodies.
      sealsAfter: db.prepare<[number], Pick<ChainRow, 'seq' | 'hash' | 'signature'>>('SELECT seq, hash, signature FROM ledger_chain WHERE seq > ? ORDER BY seq'),
      checkpoints: db.prepare<[], CheckpointRow>('SELECT * FROM ledger_checkpoints ORDER BY seq'),
      lastCheckpoint: db.prepare<[], { seq: number }>('SELECT MAX(seq) AS seq FROM ledger_checkpoints'),
      addCheckpoint: db.prepare<[number, string, number, string, string, string]>(
        'INSERT OR IGNORE INTO ledger_checkpoints (seq, hash, signed_at, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)',
      ),
    };
  }

  head(): Pick<ChainRecord, 'seq' | 'hash'> | undefined {
    return this.stmt.head.get();
  }

  /**
   * Appends after `previous`, the current head (read inside the same write transaction, so
   * no other writer interleaves).
   */
  append(previous: Pick<ChainRecord, 'seq' | 'hash'> | undefined, fields: Pick<ChainRecord, 'kind' | 'requestId' | 'recordedAt' | 'body'> & { worker?: string | undefined }, sign?: (hash: string) => string): ChainRecord {
    const r = nextRecord(previous, fields, sign);
    this.stmt.insert.run(r.seq, r.kind, r.requestId, r.recordedAt, r.worker ?? null, r.body, r.bodyHash, r.prevHash, r.hash, r.signature ?? null);
    return r;
  }

  /**
   * A request's record of `kind`, and the record after it. `seq` is where its lookup row
   * says the record is; a row that names none (written before rows named them) or one
   * whose seq does not lead to it (changed outside the platform) has it searched for.
   */
  recordOf(requestId: string, kind: ChainKind, seq: number | null): { record?: ChainRecord; next?: Pick<ChainRecord, 'seq' | 'prevHash'> } {
    let row = seq === null ? undefined : this.stmt.at.get(seq);
    if (row === undefined || row.request_id !== requestId || row.kind !== kind) row = this.stmt.of.get(requestId, kind);
    if (!row) return {};
    const next = this.stmt.after.get(row.seq);
    return { record: toRecord(row), ...(next ? { next: { seq: next.seq, prevHash: next.prev_hash } } : {}) };
  }

  /** Every record of a request, searched for through the whole chain (files made before: by their index). */
  ofRequest(requestId: string): ChainRecord[] {
    return this.stmt.ofRequest.all(requestId).map(toRecord);
  }

  at(seq: number): ChainRecord | undefined {
    const row = this.stmt.at.get(seq);
    return row && toRecord(row);
  }

  *all(): Generator<ChainRecord> {
    for (const row of this.stmt.all.iterate()) yield toRecord(row);
  }

  /** The seq, hash and seal of each record after `seq`, in order. */
  *sealsAfter(seq: number): Generator<{ seq: number; hash: string; signature: string | null }> {
    yield* this.stmt.sealsAfter.iterate(seq);
  }

  checkpoints(): Checkpoint[] {
    return this.stmt.checkpoints.all().map(toCheckpoint);
  }

  lastCheckpointSeq(): number {
    return this.stmt.lastCheckpoint.get()?.seq ?? 0;
  }

  addCheckpoint(c: Checkpoint): void {
    this.stmt.addCheckpoint.run(c.seq, c.hash, c.signedAt, c.keyId, c.publicKey, c.signature);
  }
}
