import { ArteriaError, Lifecycle } from '@arteria/protocol';
import { CheckpointMeta, TaskV1, type ParkedStep, type RunCheckpoint, type RunCheckpointStore } from '@arteria/ports';
import { openSqlite, settle, type SqliteDatabase, type SqliteSynchronous } from '../queue/sqlite-database.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS run_checkpoints (
  request_id TEXT PRIMARY KEY,
  next INTEGER NOT NULL,
  meta TEXT NOT NULL,
  state BLOB NOT NULL,
  published INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS run_parked (
  request_id TEXT NOT NULL,
  key TEXT NOT NULL,
  step TEXT NOT NULL,
  PRIMARY KEY (request_id, key)
);
`;

interface Row {
  request_id: string;
  meta: string;
  state: Buffer;
  published: number;
}

const ParkedSchema = TaskV1.shape.segmented.unwrap();

/**
 * Checkpoints of segmented runs in a SQLite file (the embedded default, and workers on one
 * machine): one row per run, rewritten whole at each segment with its state; committed
 * with `synchronous=FULL` by default, so a worker killed after a write loses nothing.
 */
export class SqliteRunCheckpoints implements RunCheckpointStore {
  readonly #db: SqliteDatabase;
  readonly #life = new Lifecycle('the run checkpoint store');

  constructor(options: { path: string; synchronous?: SqliteSynchronous }) {
    this.#db = openSqlite(options.path, options.synchronous ?? 'FULL', 'STORAGE_UNAVAILABLE');
    this.#db.exec(SCHEMA);
    this.#life.defer('database', () => void this.#db.close());
    this.#life.begin();
  }

  get(requestId: string): Promise<RunCheckpoint | undefined> {
    return this.#run('read a checkpoint', () => {
      const row = this.#db.prepare<[string], Row>('SELECT request_id, meta, state, published FROM run_checkpoints WHERE request_id = ?').get(requestId);
      if (row === undefined) return undefined;
      const meta = CheckpointMeta.parse(JSON.parse(row.meta));
      return { requestId, ...meta, state: new Uint8Array(row.state.buffer, row.state.byteOffset, row.state.byteLength), published: row.published };
    });
  }

  create(checkpoint: Omit<RunCheckpoint, 'published'>): Promise<boolean> {
    return this.#run('write a checkpoint', () => {
      const { changes } = this.#db
        .prepare('INSERT INTO run_checkpoints (request_id, next, meta, state) VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING')
        .run(checkpoint.requestId, checkpoint.next, metaOf(checkpoint), Buffer.from(checkpoint.state.buffer, checkpoint.state.byteOffset, checkpoint.state.byteLength));
      return changes === 1;
    });
  }

  advance(from: number, checkpoint: Omit<RunCheckpoint, 'published'>): Promise<boolean> {
    return this.#run('write a checkpoint', () => {
      const { changes } = this.#db
        .prepare('UPDATE run_checkpoints SET next = ?, meta = ?, state = ? WHERE request_id = ? AND next = ?')
        .run(checkpoint.next, metaOf(checkpoint), Buffer.from(checkpoint.state.buffer, checkpoint.state.byteOffset, checkpoint.state.byteLength), checkpoint.requestId, from);
      return changes === 1;
    });
  }

  markPublished(requestId: string, count: number): Promise<void> {
    return this.#run('note published events', () => {
      this.#db.prepare('UPDATE run_checkpoints SET published = MAX(published, ?) WHERE request_id = ?').run(count, requestId);
    });
  }

  park(requestId: string, step: ParkedStep): Promise<void> {
    return this.#run('keep a step', () => {
      this.#db.prepare('INSERT INTO run_parked (request_id, key, step) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(requestId, keyOf(step), JSON.stringify(step));
    });
  }

  parked(requestId: string, key: number | 'end'): Promise<ParkedStep | undefined> {
    return this.#run('read a kept step', () => {
      const row = this.#db.prepare<[string, string], { step: string }>('SELECT step FROM run_parked WHERE request_id = ? AND key = ?').get(requestId, String(key));
      if (row === undefined) return undefined;
      const step = ParkedSchema.parse(JSON.parse(row.step));
      if (step.phase !== 'segment' && step.phase !== 'end') throw new ArteriaError('INTERNAL', `run ${requestId} has an ${step.phase} step kept under ${key}`);
      return step;
    });
  }

  remove(requestId: string): Promise<void> {
    return this.#run('remove a checkpoint', () => {
      this.#db.transaction(() => {
        this.#db.prepare('DELETE FROM run_checkpoints WHERE request_id = ?').run(requestId);
        this.#db.prepare('DELETE FROM run_parked WHERE request_id = ?').run(requestId);
      })();
    });
  }

  close(): Promise<void> {
    return this.#life.close();
  }

  #run<T>(what: string, fn: () => T): Promise<T> {
    if (this.#life.state !== 'running') return Promise.reject(new ArteriaError('STORAGE_UNAVAILABLE', `cannot ${what}: the run checkpoint store is ${this.#life.state}`));
    return settle(fn).catch((err: unknown) => {
      if (err instanceof ArteriaError) throw err;
      throw new ArteriaError('STORAGE_UNAVAILABLE', `cannot ${what}: ${(err as Error).message}`, { cause: err });
    });
  }
}

function keyOf(step: ParkedStep): string {
  return step.phase === 'segment' ? String(step.index) : 'end';
}

function metaOf(checkpoint: Omit<RunCheckpoint, 'published'>): string {
  const { next, frames, headerSha256, segmentSha256s, algorithm, events } = checkpoint;
  return JSON.stringify(CheckpointMeta.parse({ next, frames, headerSha256, segmentSha256s, algorithm, events }));
}
