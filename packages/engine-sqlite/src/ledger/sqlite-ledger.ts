import { z } from 'zod';
import { ArteriaError, RequestV1, ResultV1, Lifecycle } from '@arteria/protocol';
import type { Transaction } from 'better-sqlite3';
import { commitsAt, openSqlite, settle, type SqliteDatabase } from '../queue/sqlite-database.js';
import { CheckedEntries, entryDefect, type AuditSource, type ChainRecord, type IndexEntry, acceptedBody, bodyHashOf, completedBody, type ChainKind, LedgerSigner, DEFAULT_CHECKPOINT_INTERVAL_MS, RECORD_MAC_PREFIX, type AcceptedRequest, type LedgerCounts, type LedgerEntry, type RecordedResult, type RequestLedger, type ResultProvenance } from '@arteria/ports';
import { SqliteChain } from './sqlite-chain.js';

export const SqliteRequestLedgerOptions = z.strictObject({
  /** Database file; may be the work queue's file (the ledger keeps its own table and connection). */
  path: z.string().min(1),
  /** `FULL` (default) loses nothing recorded; see SqliteSynchronous for `NORMAL`. */
  synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
  /** Seals chain records (MACs) and signs checkpoints of the chain; none: the chain is kept but nothing is signed. */
  signer: z.instanceof(LedgerSigner).optional(),
  /** A checkpoint every this many chain records... */
  checkpointEvery: z.number().int().min(1).default(1000),
  /** ...and at this interval when records were added since the last one (0: only by count and at close). */
  checkpointIntervalMs: z.number().int().min(0).default(DEFAULT_CHECKPOINT_INTERVAL_MS),
});
export type SqliteRequestLedgerOptions = z.input<typeof SqliteRequestLedgerOptions>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_requests (
  request_id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  device TEXT NOT NULL,
  algorithm TEXT,
  accepted_at REAL,
  request TEXT,
  state TEXT NOT NULL CHECK (state IN ('accepted', 'completed')),
  status TEXT CHECK (status IN ('ok', 'rejected', 'failed')),
  algorithm_name TEXT,
  algorithm_version TEXT,
  algorithm_digest TEXT,
  error_code TEXT,
  result TEXT,
  completed_at REAL,
  accepted_seq INTEGER,
  completed_seq INTEGER
);
CREATE INDEX IF NOT EXISTS ledger_requests_recent ON ledger_requests (COALESCE(accepted_at, completed_at));
CREATE TABLE IF NOT EXISTS ledger_published (
  request_id TEXT PRIMARY KEY,
  published_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_replays (
  request_id TEXT PRIMARY KEY,
  dedupe_id TEXT NOT NULL
);
`;

interface EntryRow {
  request_id: string;
  tenant: string;
  device: string;
  algorithm: string | null;
  accepted_at: number | null;
  request: string | null;
  state: 'accepted' | 'completed';
  result: string | null;
  completed_at: number | null;
}

/**
 * The ledger's counts, kept in one row by triggers on `ledger_requests`, in the transaction
 * of each write, whoever writes (this process, another one sharing the file, an older
 * version of Arteria). Counting the rows instead is a full scan on the event loop (40-80
 * ms at 100,000 rows, 720,000 more rows an hour at 200 requests/s), and counts() is read
 * by every /status request, the dashboards and the embedded autoscaler (every 2 s).
 * accepted: every row (one made by an early result too); completed: rows completed;
 * ok/rejected/failed: rows by status. Only completion changes a row's state and status;
 * rows are never deleted by the platform (the delete trigger keeps the counts exact when
 * someone removes rows from the file).
 */
const COUNTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_counts (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  accepted INTEGER NOT NULL,
  completed INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  failed INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS ledger_counts_insert AFTER INSERT ON ledger_requests BEGIN
  UPDATE ledger_counts
     SET accepted = accepted + 1, completed = completed + (NEW.state IS 'completed'), ok = ok + (NEW.status IS 'ok'),
         rejected = rejected + (NEW.status IS 'rejected'), failed = failed + (NEW.status IS 'failed')
   WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS ledger_counts_update AFTER UPDATE OF state, status ON ledger_requests
  WHEN OLD.state IS NOT NEW.state OR OLD.status IS NOT NEW.status BEGIN
  UPDATE ledger_counts
     SET completed = completed + (NEW.state IS 'completed') - (OLD.state IS 'completed'),
         ok = ok + (NEW.status IS 'ok') - (OLD.status IS 'ok'),
         rejected = rejected + (NEW.status IS 'rejected') - (OLD.status IS 'rejected'),
         failed = failed + (NEW.status IS 'failed') - (OLD.status IS 'failed')
   WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS ledger_counts_delete AFTER DELETE ON ledger_requests BEGIN
  UPDATE ledger_counts
     SET accepted = accepted - 1, completed = completed - (OLD.state IS 'completed'), ok = ok - (OLD.status IS 'ok'),
         rejected = rejected - (OLD.status IS 'rejected'), failed = failed - (OLD.status IS 'failed')
   WHERE id = 1;
END;
`;

/** The counts by a full scan: on open, of a file made before ledger_counts existed. */
const COUNT_ROWS = `
SELECT COUNT(*) AS accepted, COALESCE(SUM(state IS 'completed'), 0) AS completed, COALESCE(SUM(status IS 'ok'), 0) AS ok,
       COALESCE(SUM(status IS 'rejected'), 0) AS rejected, COALESCE(SUM(status IS 'failed'), 0) AS failed
  FROM ledger_requests`;

const ENTRY_COLUMNS = 'request_id, tenant, device, algorithm, accepted_at, request, state, result, completed_at';

/** A lookup row with its delivery state (publication, replay) and where its chain records are, read in one statement. */
interface LookupRow extends EntryRow {
  published_at: number | null;
  dedupe_id: string | null;
  /** Seq of the request's chain records; null in rows written before rows named them. */
  accepted_seq: number | null;
  completed_seq: number | null;
}

/** The columns a file made before rows named their chain records lacks (added on open). */
const SEQ_COLUMNS = ['accepted_seq', 'completed_seq'] as const;

/** The request ledger in a SQLite file (WAL), shareable by several processes. */
export class SqliteRequestLedger implements RequestLedger, AsyncDisposable {
  readonly path: string;
  private readonly db: SqliteDatabase;
  private readonly stmt;
  private readonly recordResultTx: Transaction<(fn: () => void) => void>;
  private readonly chain: SqliteChain;
  private readonly signer: LedgerSigner | undefined;
  private readonly verifyRecord: ((hash: string, signature: string) => boolean) | undefined;
  private readonly checkpointEvery: number;
  private readonly checkpointTimer: NodeJS.Timeout | undefined;
  private readonly life = new Lifecycle('SQLite request ledger');
  private readonly checkedEntries = new CheckedEntries();
  /** Runs a delivery note's commit without a sync of its own (see markPublished). */
  private readonly unsynced: <T>(fn: () => T) => T;

  constructor(options: SqliteRequestLedgerOptions) {
    const parsed = SqliteRequestLedgerOptions.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
      throw new ArteriaError('CONFIG_INVALID', `request ledger option ${where}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
    }
    this.path = parsed.data.path;
    this.signer = parsed.data.signer;
    // Signatures that verified once (and those made here) are not verified again on each lookup.
    this.verifyRecord = this.signer && this.checkedEntries.verifier(this.signer.recordVerifier);
    this.checkpointEvery = parsed.data.checkpointEvery;
    this.db = openSqlite(parsed.data.path, parsed.data.synchronous, 'INTERNAL');
    this.unsynced = commitsAt(this.db, 'NORMAL', parsed.data.synchronous);
    try {
      this.db.exec(SCHEMA);
      // Under the write lock: another process opening the same file may be adding them too
      // (and, the row checked for under the lock, counting the rows only once).
      this.db
        .transaction(() => {
          const columns = new Set(this.db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('ledger_requests')").all().map((c) => c.name));
          for (const column of SEQ_COLUMNS) if (!columns.has(column)) this.db.exec(`ALTER TABLE ledger_requests ADD COLUMN ${column} INTEGER`);
          this.db.exec(COUNTS_SCHEMA);
          if (this.db.prepare('SELECT 1 FROM ledger_counts WHERE id = 1').get() === undefined) {
            this.db.exec(`INSERT INTO ledger_counts (id, accepted, completed, ok, rejected, failed) SELECT 1, * FROM (${COUNT_ROWS})`);
          }
        })
        .immediate();
      this.stmt = {
        get: this.db.prepare<[string], LookupRow>(
          `SELECT ${ENTRY_COLUMNS.split(', ').map((c) => `r.${c}`).join(', ')}, r.accepted_seq, r.completed_seq, p.published_at, x.dedupe_id
             FROM ledger_requests r
             LEFT JOIN ledger_published p ON p.request_id = r.request_id
             LEFT JOIN ledger_replays x ON x.request_id = r.request_id
            WHERE r.request_id = ?`,
        ),
        // A row made by an early result gets its request; an accepted row stays as it is.
        accept: this.db.prepare<[string, string, string, string, number, string, number]>(
          `INSERT INTO ledger_requests (request_id, tenant, device, algorithm, accepted_at, request, accepted_seq, state)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'accepted')
           ON CONFLICT (request_id) DO UPDATE
             SET algorithm = excluded.algorithm, accepted_at = excluded.accepted_at, request = excluded.request, accepted_seq = excluded.accepted_seq
             WHERE ledger_requests.request IS NULL`,
        ),
        complete: this.db.prepare<[string, string | null, string | null, string | null, string | null, string, number, number, string]>(
          `UPDATE ledger_requests
              SET state = 'completed', status = ?, algorithm_name = ?, algorithm_version = ?, algorithm_digest = ?,
                  error_code = ?, result = ?, completed_at = ?, completed_seq = ?
            WHERE request_id = ? AND state = 'accepted'`,
        ),
        insertCompleted: this.db.prepare<[string, string, string, string, string | null, string | null, string | null, string | null, string, number, number]>(
          `INSERT OR IGNORE INTO ledger_requests (request_id, tenant, device, state, status, algorithm_name, algorithm_version,
                                                 algorithm_digest, error_code, result, completed_at, completed_seq)
           VALUES (?, ?, ?, 'completed', ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        setAcceptedSeq: this.db.prepare<[number, string]>('UPDATE ledger_requests SET accepted_seq = ? WHERE request_id = ?'),
        setCompletedSeq: this.db.prepare<[number, string]>('UPDATE ledger_requests SET completed_seq = ? WHERE request_id = ?'),
        seqs: this.db.prepare<[string], { request: number; state: string; accepted_seq: number | null; completed_seq: number | null }>(
          'SELECT request IS NOT NULL AS request, state, accepted_seq, completed_seq FROM ledger_requests WHERE request_id = ?',
        ),
        counts: this.db.prepare<[], LedgerCounts>('SELECT accepted, completed, ok, rejected, failed FROM ledger_counts WHERE id = 1'),
        countRows: this.db.prepare<[], LedgerCounts>(COUNT_ROWS),
        markPublished: this.db.prepare<[string, number]>('INSERT OR IGNORE INTO ledger_published (request_id, published_at) VALUES (?, ?)'),
        noteReplay: this.db.prepare<[string, string]>('INSERT OR REPLACE INTO ledger_replays (request_id, dedupe_id) VALUES (?, ?)'),
        recent: this.db.prepare<[number], EntryRow>(
          `SELECT ${ENTRY_COLUMNS} FROM ledger_requests ORDER BY COALESCE(accepted_at, completed_at) DESC, rowid DESC LIMIT ?`,
        ),
      };
      // IMMEDIATE: another process's acceptance cannot slip between the update and the
      // insert, nor another record between reading the chain's head and appending to it.
      this.recordResultTx = this.db.transaction((fn: () => void) => fn());
      this.chain = new SqliteChain(this.db);
      this.recordResultTx.immediate(() => this.chainExistingRows());
    } catch (err) {
      this.db.close();
      throw new ArteriaError('INTERNAL', `cannot prepare the request ledger in ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    if (this.signer !== undefined && parsed.data.checkpointIntervalMs > 0) {
      this.checkpointTimer = setInterval(() => {
        if (!this.closed) this.recordResultTx.immediate(() => this.checkpoint());
      }, parsed.data.checkpointIntervalMs).unref();
    }
    // Closed last-registered-first: the timer stops, a last checkpoint is signed, the file closes.
    this.life.defer('database file', () => void this.db.close());
    this.life.defer('final checkpoint', () => this.recordResultTx.immediate(() => this.checkpoint()));
    this.life.defer('checkpoint timer', () => clearInterval(this.checkpointTimer));
    this.life.begin();
  }

  /** From close() on: reads and writes are ILLEGAL_STATE. */
  private get closed(): boolean {
    return !this.life.running;
  }

  /** Runs fn in an IMMEDIATE transaction and returns its value. */
  private write<T>(fn: () => T): T {
    let out: { value: T } | undefined;
    this.recordResultTx.immediate(() => {
      out = { value: fn() };
    });
    if (out === undefined) throw new ArteriaError('INTERNAL', 'ledger transaction returned nothing');
    return out.value;
  }

  /** A ledger written before it had a chain: its rows become the chain's first records, in the order they were written. */
  private chainExistingRows(): void {
    if (this.chain.head() !== undefined) return;
    for (const row of this.db.prepare<[], EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ledger_requests ORDER BY rowid`).all()) {
      const entry = toEntry(row);
      if (entry.request !== undefined && entry.algorithm !== undefined && entry.acceptedAt !== undefined) {
        const previous = this.chain.head();
        this.appendChained(previous, 'accepted', entry.requestId, entry.acceptedAt, acceptedBody({ ...entry, algorithm: entry.algorithm, acceptedAt: entry.acceptedAt, request: entry.request }));
        this.stmt.setAcceptedSeq.run(nextSeq(previous), entry.requestId);
      }
      if (entry.state === 'completed') {
        const previous = this.chain.head();
        this.appendChained(previous, 'completed', entry.requestId, entry.completedAt, completedBody(entry.result));
        this.stmt.setCompletedSeq.run(nextSeq(previous), entry.requestId);
      }
    }
  }

  /**
   * Signs a checkpoint of the chain's head unless it is signed already; inside a write
   * transaction. A checkpoint vouches, through the chain's links, for every record up to
   * its own, and records' MACs are checked by the private key only: so it never covers a
   * record whose MAC does not hold (one added to the file by someone without the key). It
   * then stops before that record, and every audit with the private key names it.
   * Records this ledger sealed itself are known good (no MAC computed again).
   */
  private checkpoint(): void {
    const signer = this.signer;
    const verify = this.verifyRecord;
    if (signer === undefined || verify === undefined) return;
    let through: { seq: number; hash: string } | undefined;
    for (const r of this.chain.sealsAfter(this.chain.lastCheckpointSeq())) {
      // Ed25519-signed and unsealed records are judged by the public key itself in an audit.
      if (r.signature !== null && r.signature.startsWith(RECORD_MAC_PREFIX) && !verify(r.hash, r.signature)) break;
      through = r;
    }
    if (through !== undefined) this.chain.addCheckpoint(signer.sign(through.seq, through.hash, Date.now()));
  }

  /** Appends a record after `previous` (the head, read in this write transaction); returns its body hash. */
  private appendChained(previous: ChainHead | undefined, kind: ChainKind, requestId: string, recordedAt: number, body: string, worker?: string): string {
    const signer = this.signer;
    const r = this.chain.append(previous, { kind, requestId, recordedAt, body, worker }, signer && ((hash) => signer.sealRecord(hash)));
    if (r.signature !== undefined) this.checkedEntries.rememberSignature(r.hash, r.signature);
    if (r.seq % this.checkpointEvery === 0) this.checkpoint();
    return r.bodyHash;
  }

  /**
   * Serves an entry only when its chain records hold what the lookup row holds: a row
   * changed or inserted outside the platform is refused (LEDGER_TAMPERED), never replayed.
   */
  private verified(row: LookupRow, entry: LedgerEntry): LedgerEntry {
    const checks: Array<[ChainKind, string, number | null]> = [];
    const { requestId } = entry;
    if (entry.request !== undefined && entry.algorithm !== undefined && entry.acceptedAt !== undefined) {
      const accepted = { ...entry, algorithm: entry.algorithm, acceptedAt: entry.acceptedAt, request: entry.request };
      checks.push(['accepted', this.checkedEntries.bodyHash('accepted', requestId, acceptedDigest(row), () => bodyHashOf(acceptedBody(accepted))), row.accepted_seq]);
    }
    if (entry.state === 'completed') {
      checks.push(['completed', this.checkedEntries.bodyHash('completed', requestId, CheckedEntries.digest(row.result), () => bodyHashOf(completedBody(entry.result))), row.completed_seq]);
    }
    for (const [kind, bodyHash, seq] of checks) {
      const { record, next } = this.chain.recordOf(requestId, kind, seq);
      const defect = entryDefect(kind, bodyHash, record, next, this.verifyRecord);
      if (defect !== undefined) throw new ArteriaError('LEDGER_TAMPERED', `ledger entry of request ${requestId}: ${defect}; run arteria audit verify`);
    }
    const last = checks.at(-1);
    return entry.state === 'completed' && last !== undefined ? { ...entry, result: { ...entry.result, recordHash: last[1] } } : entry;
  }

  /** The chain, checkpoints and lookup rows as stored, for `arteria audit`. */
  auditSource(): AuditSource {
    const run = <T>(fn: () => T): T => {
      if (this.closed) throw this.life.illegal('read the audit source');
      return fn();
    };
    const rows = (): EntryRow[] => run(() => this.db.prepare<[], EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM ledger_requests ORDER BY rowid`).all());
    return {
      chain: () => run(() => [...this.chain.all()]),
      checkpoints: () => settle(() => run(() => this.chain.checkpoints())),
      chainOf: (requestId) => settle(() => run(() => this.chainOf(requestId))),
      index: () => rows().flatMap(indexEntries),
    };
  }

  /**
   * A request's chain records: those its lookup row names, when it names every record it
   * should; otherwise (a row written before rows named them, a row changed or removed
   * outside the platform) every record of the request, searched for through the chain.
   */
  private chainOf(requestId: string): ChainRecord[] {
    const row = this.stmt.seqs.get(requestId);
    const named = row === undefined ? [] : [...(row.request === 1 ? [row.accepted_seq] : []), ...(row.state === 'completed' ? [row.completed_seq] : [])];
    if (row === undefined || named.length === 0 || named.some((seq) => seq === null)) return this.chain.ofRequest(requestId);
    const records = named.flatMap((seq) => (seq === null ? [] : [this.chain.at(seq)]));
    if (records.some((r) => r === undefined || r.requestId !== requestId)) return this.chain.ofRequest(requestId);
    return (records as ChainRecord[]).sort((a, b) => a.seq - b.seq);
  }

  get(requestId: string): Promise<LedgerEntry | undefined> {
    return this.run('get', () => this.lookup(requestId));
  }

  /** get() inside a call that is already running. */
  private lookup(requestId: string): LedgerEntry | undefined {
    const row = this.stmt.get.get(requestId);
    if (!row) return undefined;
    const entry = this.verified(row, toEntry(row));
    if (entry.state !== 'completed') return entry;
    return { ...entry, ...(row.published_at !== null && { publishedAt: row.published_at }), ...(row.dedupe_id !== null && { replayedAs: row.dedupe_id }) };
  }

  /**
   * The publish note is committed without waiting for the disk (the WAL is written, not
   * synced): a crash of any process keeps it, and the next synced commit (the next request's)
   * carries it to the disk in order. Only a power loss or an OS crash in between can lose
   * it, and then a redelivered task publishes the same recorded result once more, which is
   * what a lost note means anyway. A sync of its own cost about a fifth of the ledger's
   * CPU a request.
   */
  markPublished(requestId: string, at: number): Promise<void> {
    return this.run('markPublished', () => {
      this.unsynced(() => this.stmt.markPublished.run(requestId, at));
    });
  }

  noteReplay(requestId: string, dedupeId: string): Promise<void> {
    return this.run('noteReplay', () => {
      this.stmt.noteReplay.run(requestId, dedupeId);
    });
  }

  recordAccepted(entry: AcceptedRequest): Promise<'new' | 'existing'> {
    return this.run('recordAccepted', () => {
      const request = RequestV1.safeParse(entry.request);
      if (!request.success) {
        throw new ArteriaError('INTERNAL', `ledger: request ${entry.requestId} does not match RequestV1`, { cause: request.error });
      }
      if (request.data.id !== entry.requestId) {
        throw new ArteriaError('INTERNAL', `ledger: entry id ${entry.requestId} differs from request id ${request.data.id}`);
      }
      const { requestId, tenant, device, algorithm, acceptedAt } = entry;
      const stored = JSON.stringify(request.data);
      const bodyHash = this.write(() => {
        // The row names its chain record, the one appended next.
        const previous = this.chain.head();
        const info = this.stmt.accept.run(requestId, tenant, device, algorithm, acceptedAt, stored, nextSeq(previous));
        if (info.changes !== 1) return undefined;
        return this.appendChained(previous, 'accepted', requestId, acceptedAt, acceptedBody({ tenant, device, algorithm, acceptedAt, request: request.data }));
      });
      return bodyHash === undefined ? 'existing' : 'new';
    });
  }

  recordResult(result: ResultV1, provenance: ResultProvenance = {}): Promise<RecordedResult> {
    return this.run('recordResult', () => {
      const parsed = ResultV1.safeParse(result);
      if (!parsed.success) {
        throw new ArteriaError('INTERNAL', `ledger: result for ${result.requestId} does not match ResultV1`, { cause: parsed.error });
      }
      const r = parsed.data;
      const columns = [
        r.status,
        r.algorithm?.name ?? null,
        r.algorithm?.version ?? null,
        r.algorithm?.digest ?? null,
        r.error?.code ?? null,
        JSON.stringify(r),
        Date.now(),
      ] as const;
      const bodyHash = this.write(() => {
        // The row names its chain record, the one appended next. Not an accepted row: either
        // completed already (the first result stands, the insert is ignored) or not accepted
        // yet (the row starts completed).
        const previous = this.chain.head();
        const seq = nextSeq(previous);
        const recorded = this.stmt.complete.run(...columns, seq, r.requestId).changes === 1 || this.stmt.insertCompleted.run(r.requestId, r.tenant, r.device, ...columns, seq).changes === 1;
        return recorded ? this.appendChained(previous, 'completed', r.requestId, columns[6], completedBody(r), provenance.worker) : undefined;
      });
      if (bodyHash !== undefined) {
        return { recorded: true, result: { ...r, recordHash: bodyHash }, completedAt: columns[6] };
      }
      // Another result was recorded first: it stands, and is served only once it checks out.
      const standing = this.lookup(r.requestId);
      if (standing?.state !== 'completed') throw new ArteriaError('INTERNAL', `ledger: request ${r.requestId} has no recorded result after recording one`);
      return { recorded: false, result: standing.result, completedAt: standing.completedAt, ...(standing.publishedAt !== undefined && { publishedAt: standing.publishedAt }) };
    });
  }

  counts(): Promise<LedgerCounts> {
    return this.run('counts', () => {
      // No row only when someone removed it from the file: the rows are counted as before.
      const row = this.stmt.counts.get() ?? this.stmt.countRows.get();
      return { accepted: row?.accepted ?? 0, completed: row?.completed ?? 0, ok: row?.ok ?? 0, rejected: row?.rejected ?? 0, failed: row?.failed ?? 0 };
    });
  }

  recent(limit: number): Promise<LedgerEntry[]> {
    return this.run('recent', () => {
      if (!Number.isInteger(limit) || limit < 0) throw new ArteriaError('CONFIG_INVALID', `limit must be an integer >= 0, got ${limit}`);
      return this.stmt.recent.all(limit).map(toEntry);
    });
  }

  /** Signs a last checkpoint and closes the file; memoised (CLOSE_FAILED names each failed step). */
  close(): Promise<void> {
    return this.life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Runs one operation, mapping engine failures to INTERNAL (retryable). */
  private run<T>(operation: string, fn: () => T): Promise<T> {
    return settle(() => {
      if (this.closed) throw this.life.illegal(`run ${operation}`);
      try {
        return fn();
      } catch (err) {
        if (err instanceof ArteriaError) throw err;
        throw new ArteriaError('INTERNAL', `ledger ${operation} failed: ${(err as Error).message}`, { cause: err });
      }
    });
  }
}

type ChainHead = Pick<ChainRecord, 'seq' | 'hash'>;

/** The seq of the record appended after `head`. */
const nextSeq = (head: ChainHead | undefined): number => (head?.seq ?? 0) + 1;

/** The stored form of a row's accepted entry (what its chain check depends on). */
function acceptedDigest(row: Pick<EntryRow, 'tenant' | 'device' | 'algorithm' | 'accepted_at' | 'request'>): string {
  return CheckedEntries.digest(row.tenant, row.device, row.algorithm, row.accepted_at, row.request);
}

/** What one lookup row holds, hashed as the chain hashes it. */
function indexEntries(row: EntryRow): IndexEntry[] {
  const entries: IndexEntry[] = [];
  const hashOf = (make: () => string): string => {
    try {
      return bodyHashOf(make());
    } catch {
      return 'unreadable'; // a row that no longer parses is reported as modified
    }
  };
  if (row.request !== null) {
    entries.push({
      requestId: row.request_id,
      kind: 'accepted',
      bodyHash: hashOf(() => acceptedBody({ tenant: row.tenant, device: row.device, algorithm: row.algorithm ?? '', acceptedAt: row.accepted_at ?? 0, request: parseStored(RequestV1, row.request ?? '', row.request_id, 'request') })),
    });
  }
  if (row.state === 'completed') {
    entries.push({ requestId: row.request_id, kind: 'completed', bodyHash: hashOf(() => completedBody(parseStored(ResultV1, row.result ?? 'null', row.request_id, 'result'))) });
  }
  return entries;
}

/** Stored JSON is parsed back through the protocol schemas: a corrupt row fails loudly. */
function toEntry(row: EntryRow): LedgerEntry {
  const ids = { requestId: row.request_id, tenant: row.tenant, device: row.device };
  const request = row.request === null ? undefined : parseStored(RequestV1, row.request, row.request_id, 'request');
  if (row.state === 'completed') {
    const result = parseStored(ResultV1, row.result ?? 'null', row.request_id, 'result');
    return {
      ...ids,
      ...(request && { request, algorithm: row.algorithm ?? request.algorithm, acceptedAt: row.accepted_at ?? undefined }),
      state: 'completed',
      status: result.status,
      completedAt: row.completed_at ?? 0,
      result,
    };
  }
  if (!request || row.algorithm === null || row.accepted_at === null) {
    throw new ArteriaError('INTERNAL', `ledger: accepted entry ${row.request_id} has no request`);
  }
  return { ...ids, algorithm: row.algorithm, acceptedAt: row.accepted_at, request, state: 'accepted' };
}

function parseStored<S extends z.ZodType>(schema: S, json: string, requestId: string, what: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new ArteriaError('INTERNAL', `ledger: stored ${what} of ${requestId} is not JSON`, { cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ArteriaError('INTERNAL', `ledger: stored ${what} of ${requestId} does not match its schema`, { cause: parsed.error });
  }
  return parsed.data;
}
