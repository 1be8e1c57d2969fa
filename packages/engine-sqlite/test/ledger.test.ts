import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resultDigest, type RequestV1 } from '@arteria/protocol';
import type { LedgerCounts } from '@arteria/ports';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { requestLedgerConformance, acceptedOf, testRequest, testResult } from '@arteria/testing';

const dir = mkdtempSync(join(tmpdir(), 'arteria-ledger-'));
let files = 0;
const freshPath = (): string => join(dir, `ledger-${++files}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHA = 'a'.repeat(64);
const DIGEST = `sha256:${'d'.repeat(64)}`;
const makeRequest = (instanceUid: string, device = 'cathlab-1'): RequestV1 => testRequest(instanceUid, { device, sha256: SHA });
const accepted = acceptedOf;
const makeResult = testResult;
const WRITER = fileURLToPath(new URL('./fixtures/ledger-writer.mjs', import.meta.url));

/** The ledger connection's synchronous setting (2: FULL, 1: NORMAL). */
const synchronousOf = (ledger: SqliteRequestLedger): unknown => (ledger as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });

/** The counts by a full scan of the rows, read from the file by a connection of its own. */
function scannedCounts(path: string): LedgerCounts {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare<[], LedgerCounts>(
        `SELECT COUNT(*) AS accepted, COALESCE(SUM(state = 'completed'), 0) AS completed, COALESCE(SUM(status = 'ok'), 0) AS ok,
                COALESCE(SUM(status = 'rejected'), 0) AS rejected, COALESCE(SUM(status = 'failed'), 0) AS failed
           FROM ledger_requests`,
      )
      .get()!;
  } finally {
    db.close();
  }
}




{
  const shared = freshPath();
  requestLedgerConformance('SQLite (two connections on one file)', () => Promise.resolve(new SqliteRequestLedger({ path: shared })));
}

describe('SqliteRequestLedger', () => {
  const ledgers: SqliteRequestLedger[] = [];
  const open = (path = freshPath()): SqliteRequestLedger => {
    const ledger = new SqliteRequestLedger({ path });
    ledgers.push(ledger);
    return ledger;
  };
  afterEach(async () => {
    await Promise.all(ledgers.splice(0).map((l) => l.close()));
  });

  it('completes a request with its result, read back through the schema', async () => {
    const ledger = open();
    const request = makeRequest('1.2.3');
    await ledger.recordAccepted(accepted(request));
    const result = makeResult(request, 'ok', { injections: [{ startFrame: 41, endFrame: 63 }] });
    const before = Date.now();
    await ledger.recordResult(result);
    const entry = await ledger.get(request.id);
    expect(entry?.state).toBe('completed');
    if (entry?.state !== 'completed') throw new Error('not completed');
    expect(entry.result).toEqual({ ...result, recordHash: resultDigest(result) });
    expect(entry.status).toBe('ok');
    expect(entry.request).toEqual(request);
    expect(entry.acceptedAt).toBe(2_000);
    expect(entry.completedAt).toBeGreaterThanOrEqual(before);
  });

  it('stores status, algorithm identity and error code in their own columns', async () => {
    const path = freshPath();
    const ledger = open(path);
    const okRequest = makeRequest('1.1');
    const failedRequest = makeRequest('1.2');
    for (const r of [okRequest, failedRequest]) await ledger.recordAccepted(accepted(r));
    await ledger.recordResult(makeResult(okRequest, 'ok', { n: 1 }));
    await ledger.recordResult(makeResult(failedRequest, 'failed'));
    const db = new Database(path, { readonly: true });
    try {
      const rows = db
        .prepare('SELECT request_id, status, algorithm_name, algorithm_version, algorithm_digest, error_code FROM ledger_requests ORDER BY request_id')
        .all();
      expect(rows).toEqual(
        expect.arrayContaining([
          { request_id: okRequest.id, status: 'ok', algorithm_name: 'contrast-injection', algorithm_version: '1.2.0', algorithm_digest: DIGEST, error_code: null },
          { request_id: failedRequest.id, status: 'failed', algorithm_name: null, algorithm_version: null, algorithm_digest: null, error_code: 'ALGORITHM_CRASHED' },
        ]),
      );
    } finally {
      db.close();
    }
  });

  it('counts and lists recent entries newest first', async () => {
    const ledger = open();
    const requests = ['1.1', '1.2', '1.3', '1.4'].map((uid) => makeRequest(uid));
    for (const [i, r] of requests.entries()) await ledger.recordAccepted(accepted(r, 10_000 + i));
    await ledger.recordResult(makeResult(requests[0]!, 'ok', {}));
    await ledger.recordResult(makeResult(requests[1]!, 'rejected'));
    await ledger.recordResult(makeResult(requests[2]!, 'failed'));
    expect(await ledger.counts()).toEqual({ accepted: 4, completed: 3, ok: 1, rejected: 1, failed: 1 });
    const recent = await ledger.recent(3);
    expect(recent.map((e) => e.requestId)).toEqual([requests[3]!.id, requests[2]!.id, requests[1]!.id]);
    expect(recent.map((e) => e.state)).toEqual(['accepted', 'completed', 'completed']);
    expect(await ledger.recent(0)).toEqual([]);
  });

  it('counts stay equal to a full scan through acceptances, early results, completions and duplicate results', async () => {
    const path = freshPath();
    const ledger = open(path);
    const [a, b, c, d, e, f] = ['3.1', '3.2', '3.3', '3.4', '3.5', '3.6'].map((uid) => makeRequest(uid));
    const steps: Array<[() => Promise<unknown>, LedgerCounts]> = [
      [() => ledger.recordAccepted(accepted(a!)), { accepted: 1, completed: 0, ok: 0, rejected: 0, failed: 0 }],
      [() => ledger.recordAccepted(accepted(a!)), { accepted: 1, completed: 0, ok: 0, rejected: 0, failed: 0 }],
      [() => ledger.recordAccepted(accepted(b!)), { accepted: 2, completed: 0, ok: 0, rejected: 0, failed: 0 }],
      [() => ledger.recordAccepted(accepted(c!)), { accepted: 3, completed: 0, ok: 0, rejected: 0, failed: 0 }],
      // An early result makes a row of its own; the acceptance that follows adds none.
      [() => ledger.recordResult(makeResult(d!, 'ok')), { accepted: 4, completed: 1, ok: 1, rejected: 0, failed: 0 }],
      [() => ledger.recordResult(makeResult(e!, 'failed')), { accepted: 5, completed: 2, ok: 1, rejected: 0, failed: 1 }],
      [() => ledger.recordAccepted(accepted(d!)), { accepted: 5, completed: 2, ok: 1, rejected: 0, failed: 1 }],
      [() => ledger.recordResult(makeResult(a!, 'ok')), { accepted: 5, completed: 3, ok: 2, rejected: 0, failed: 1 }],
      [() => ledger.recordResult(makeResult(b!, 'rejected')), { accepted: 5, completed: 4, ok: 2, rejected: 1, failed: 1 }],
      [() => ledger.recordResult(makeResult(c!, 'failed')), { accepted: 5, completed: 5, ok: 2, rejected: 1, failed: 2 }],
      // Duplicate results: the first stands, nothing is counted again.
      [() => ledger.recordResult(makeResult(a!, 'failed')), { accepted: 5, completed: 5, ok: 2, rejected: 1, failed: 2 }],
      [() => ledger.recordResult(makeResult(e!, 'ok')), { accepted: 5, completed: 5, ok: 2, rejected: 1, failed: 2 }],
      [() => ledger.markPublished(a!.id, 4_000), { accepted: 5, completed: 5, ok: 2, rejected: 1, failed: 2 }],
      [() => ledger.noteReplay(b!.id, `${b!.id}/replay/1`), { accepted: 5, completed: 5, ok: 2, rejected: 1, failed: 2 }],
      [() => ledger.recordAccepted(accepted(f!)), { accepted: 6, completed: 5, ok: 2, rejected: 1, failed: 2 }],
    ];
    for (const [step, expected] of steps) {
      await step();
      expect(await ledger.counts()).toEqual(expected);
      expect(scannedCounts(path)).toEqual(expected);
    }
    // Rows removed from the file by hand are uncounted too.
    const db = new Database(path);
    db.prepare('DELETE FROM ledger_requests WHERE request_id IN (?, ?)').run(b!.id, f!.id);
    db.close();
    expect(await ledger.counts()).toEqual({ accepted: 4, completed: 4, ok: 2, rejected: 0, failed: 2 });
    expect(scannedCounts(path)).toEqual({ accepted: 4, completed: 4, ok: 2, rejected: 0, failed: 2 });
  });

  it('a file made before the counts were kept gets exact counts on open, counted once by each of two openers', async () => {
    const path = freshPath();
    const before = open(path);
    const requests = ['4.1', '4.2', '4.3', '4.4', '4.5'].map((uid) => makeRequest(uid));
    for (const r of requests.slice(0, 4)) await before.recordAccepted(accepted(r));
    await before.recordResult(makeResult(requests[0]!, 'ok'));
    await before.recordResult(makeResult(requests[1]!, 'rejected'));
    await before.recordResult(makeResult(requests[4]!, 'failed'));
    await before.close();
    const db = new Database(path);
    db.exec('DROP TRIGGER ledger_counts_insert; DROP TRIGGER ledger_counts_update; DROP TRIGGER ledger_counts_delete; DROP TABLE ledger_counts;');
    db.close();
    const expected = { accepted: 5, completed: 3, ok: 1, rejected: 1, failed: 1 };
    expect(scannedCounts(path)).toEqual(expected);
    const [a, b] = [open(path), open(path)];
    expect(await a.counts()).toEqual(expected);
    expect(await b.counts()).toEqual(expected);
    await b.recordResult(makeResult(requests[2]!, 'ok'));
    expect(await a.counts()).toEqual({ accepted: 5, completed: 4, ok: 2, rejected: 1, failed: 1 });
    expect(scannedCounts(path)).toEqual({ accepted: 5, completed: 4, ok: 2, rejected: 1, failed: 1 });
  });

  it('two ledgers on one file (as two processes) both see exact counts after interleaved writes', async () => {
    const path = freshPath();
    const [a, b] = [open(path), open(path)];
    const requests = ['5.1', '5.2', '5.3', '5.4', '5.5', '5.6'].map((uid) => makeRequest(uid));
    const [r1, r2, r3, r4, r5, r6] = requests as [RequestV1, RequestV1, RequestV1, RequestV1, RequestV1, RequestV1];
    await a.recordAccepted(accepted(r1));
    await b.recordAccepted(accepted(r2));
    await b.recordResult(makeResult(r1, 'ok'));
    await a.recordResult(makeResult(r3, 'rejected'));
    await Promise.all([a.recordResult(makeResult(r2, 'failed')), b.recordResult(makeResult(r2, 'ok')), a.recordAccepted(accepted(r4)), b.recordAccepted(accepted(r4))]);
    await b.recordAccepted(accepted(r3));
    await a.recordResult(makeResult(r1, 'failed'));
    await Promise.all([a.recordAccepted(accepted(r5)), b.recordResult(makeResult(r6, 'ok')), b.recordResult(makeResult(r4, 'rejected'))]);
    const expected = { accepted: 6, completed: 5, ok: 2, rejected: 2, failed: 1 };
    expect(scannedCounts(path)).toEqual(expected);
    expect(await a.counts()).toEqual(expected);
    expect(await b.counts()).toEqual(expected);
  });

  it('entries survive close and reopen; the file can be shared with the work queue', async () => {
    const path = freshPath();
    const queue = new SqliteWorkQueue({ path, maxDeliveries: 3 });
    const ledger = open(path);
    const request = makeRequest('7.7');
    await queue.enqueue(Buffer.from(request.id), { dedupeId: request.id });
    await ledger.recordAccepted(accepted(request));
    await ledger.close();
    await ledger.close();
    const reopened = open(path);
    expect((await reopened.get(request.id))?.request).toEqual(request);
    expect((await queue.stats()).ready).toBe(1);
    await queue.close();
  });

  it('a publish note, committed without a sync of its own, survives the kill of its process', async () => {
    const path = freshPath();
    const child = fork(WRITER, [path, '4.4.4'], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const [message] = (await once(child, 'message')) as [{ requestId: string }];
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
      const entry = await open(path).get(message.requestId);
      expect(entry).toMatchObject({ state: 'completed', status: 'ok', publishedAt: 4_000 });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('requests and results stay synced commits after a publish note, a failed one too', async () => {
    const path = freshPath();
    const ledger = open(path);
    expect(synchronousOf(ledger)).toBe(2);
    const request = makeRequest('5.5.5');
    await ledger.recordAccepted(accepted(request));
    await ledger.recordResult(makeResult(request, 'ok'));
    await ledger.markPublished(request.id, 3_000);
    expect(synchronousOf(ledger)).toBe(2);
    // The note's table removed behind the ledger's back: the note fails, typed, and the
    // connection is back to FULL for the next request.
    const db = new Database(path);
    try {
      db.exec('DROP TABLE ledger_published');
    } finally {
      db.close();
    }
    await expect(ledger.markPublished(request.id, 3_001)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(synchronousOf(ledger)).toBe(2);
    // A ledger opened NORMAL stays NORMAL.
    const normal = new SqliteRequestLedger({ path: freshPath(), synchronous: 'NORMAL' });
    ledgers.push(normal);
    await normal.markPublished(request.id, 3_000);
    expect(synchronousOf(normal)).toBe(1);
  });

  it('a corrupt stored result fails loudly instead of being returned unchecked', async () => {
    const path = freshPath();
    const ledger = open(path);
    const request = makeRequest('8.8');
    await ledger.recordAccepted(accepted(request));
    await ledger.recordResult(makeResult(request, 'ok', {}));
    const db = new Database(path);
    try {
      db.prepare('UPDATE ledger_requests SET result = ? WHERE request_id = ?').run('{"v":2}', request.id);
    } finally {
      db.close();
    }
    await expect(ledger.get(request.id)).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(ledger.get(request.id)).rejects.toThrow(/stored result .* does not match/);
  });

  it('refuses a request whose id does not match the entry, and bad options', async () => {
    const ledger = open();
    const request = makeRequest('9.9');
    await expect(ledger.recordAccepted({ ...accepted(request), requestId: makeRequest('9.8').id })).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    const bad = { path: freshPath(), retentionDays: 3 } as unknown as ConstructorParameters<typeof SqliteRequestLedger>[0];
    expect(() => new SqliteRequestLedger(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('fails with ILLEGAL_STATE after close, the audit source too', async () => {
    const ledger = open();
    await ledger[Symbol.asyncDispose]();
    await expect(ledger.counts()).rejects.toMatchObject({ code: 'ILLEGAL_STATE', message: 'SQLite request ledger is closed: cannot run counts' });
    expect(() => ledger.auditSource().chain()).toThrow(expect.objectContaining({ code: 'ILLEGAL_STATE' }) as Error);
  });
});
