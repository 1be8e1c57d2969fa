import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Outbox } from '@arteria/gateway';
import { newOutboxEntry as entry } from './helpers.js';

const TRACE = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=abc' };

describe("the outbox keeps a run's trace context", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arteria-outbox-trace-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('stores it with the run, across a reopen, and upgrades an outbox written before traces existed', () => {
    const file = path.join(dir, 'outbox.db');
    // An outbox from an older gateway: the same table without the trace column.
    Outbox.open(file, { maxEntries: 10, keepFinishedEntries: 10 }).close();
    const db = new Database(file);
    db.exec('ALTER TABLE outbox DROP COLUMN trace_json');
    db.prepare(`INSERT INTO outbox (id, source_path, spooled, algorithm, instance_uid, object_key, priority, acquired_at, state, next_attempt_at, created_at, updated_at)
      VALUES ('old', '/runs/old.dcm', 0, 'echo@^1', '1.2.3', 'acme/dev1/old', 'clinical', 1, 'pending', 1, 1, 1)`).run();
    db.close();

    const outbox = Outbox.open(file, { maxEntries: 10, keepFinishedEntries: 10 });
    expect(outbox.get('old')?.trace).toBeUndefined();
    outbox.add(entry('traced', TRACE), 2_000);
    outbox.add(entry('untraced'), 2_000);
    outbox.close();

    const reopened = Outbox.open(file, { maxEntries: 10, keepFinishedEntries: 10 });
    expect(reopened.get('traced')?.trace).toEqual(TRACE);
    expect(reopened.get('untraced')?.trace).toBeUndefined();
    expect(reopened.get('old')?.state).toBe('pending');
    reopened.close();
  });
});
