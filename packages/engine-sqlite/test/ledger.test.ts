import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resultDigest, type RequestV1 } from '@arteria/protocol';
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
