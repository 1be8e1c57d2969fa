import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RequestV1, resultDigest, type ResultV1 } from '@arteria/protocol';
import { SqliteRequestLedger } from '@arteria/engine-sqlite';
import { testRequest } from '@arteria/testing';
import { auditLedger, completedBody, nextRecord, loadOrCreateLedgerSigner, provenanceOf, readAuditKeys, recordVerifier, LedgerSigner, RECORD_MAC_PREFIX, type AuditReport } from '@arteria/ports';

const dir = mkdtempSync(join(tmpdir(), 'arteria-audit-'));
let files = 0;
const freshPath = (): string => join(dir, `ledger-${++files}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHA = 'e'.repeat(64);
const makeRequest = (instanceUid: string): RequestV1 => testRequest(instanceUid, { sha256: SHA, size: 2048 });


function okResult(request: RequestV1, injections: number): ResultV1 {
  return {
    v: 1,
    requestId: request.id,
    tenant: request.tenant,
    device: request.device,
    status: 'ok',
    algorithm: { name: 'contrast-injection', version: '1.2.0', digest: `sha256:${'f'.repeat(64)}`, model: { name: 'm', digest: `sha256:${'9'.repeat(64)}` } },
    output: { injections },
    timings: { ...request.timings, enqueued: 2_000, leased: 2_100, fetched: 2_200, computed: 2_900, resultPublished: 3_000 },
  };
}

/** Drops the append-only triggers, as someone editing the file would, and runs `edit`. */
function tamper(path: string, edit: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    db.exec('DROP TRIGGER IF EXISTS ledger_chain_no_update; DROP TRIGGER IF EXISTS ledger_chain_no_delete;');
    edit(db);
  } finally {
    db.close();
  }
}

const problems = (report: AuditReport): string[] => report.findings.map((f) => `${f.problem}@${f.seq ?? '-'}:${f.requestId ?? '-'}`);

describe('hash-chained SQLite ledger', () => {
  const open: SqliteRequestLedger[] = [];
  let signer: LedgerSigner;
  afterEach(async () => {
    await Promise.all(open.splice(0).map((l) => l.close()));
  });

  /** Five requests, each accepted then completed: chain records 1..10. */
  async function filled(path = freshPath()): Promise<{ ledger: SqliteRequestLedger; path: string; requests: RequestV1[] }> {
    signer ??= await loadOrCreateLedgerSigner(join(dir, 'key.pem'));
    const ledger = new SqliteRequestLedger({ path, signer, checkpointEvery: 4, checkpointIntervalMs: 0 });
    open.push(ledger);
    const requests = ['1.1', '1.2', '1.3', '1.4', '1.5'].map(makeRequest);
    for (const [i, r] of requests.entries()) {
      await ledger.recordAccepted({ requestId: r.id, tenant: r.tenant, device: r.device, algorithm: r.algorithm, acceptedAt: 2_000 + i, request: r });
      await ledger.recordResult(okResult(r, i), { worker: 'host-a:42' });
    }
    return { ledger, path, requests };
  }

  it('chains every record, signs checkpoints, and a clean ledger verifies', async () => {
    const { ledger, requests } = await filled();
    const report = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(report).toMatchObject({ ok: true, records: 10, headSeq: 10, findings: [] });
    expect(report.signedThrough).toBe(8); // checkpointEvery 4: records 4 and 8
    const entry = await ledger.get(requests[0]!.id);
    expect(entry?.result?.recordHash).toBe(resultDigest(okResult(requests[0]!, 0)));
  });

  it('the key file and the ledger file are readable by their owner only (0600)', async () => {
    const { path } = await filled();
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('a changed result row is named by audit verify and is never served (LEDGER_TAMPERED)', async () => {
    const { ledger, path, requests } = await filled();
    const victim = requests[2]!;
    const forged = { ...okResult(victim, 2), output: { injections: 99 } };
    tamper(path, (db) => db.prepare('UPDATE ledger_requests SET result = ? WHERE request_id = ?').run(JSON.stringify(forged), victim.id));
    await expect(ledger.get(victim.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    const report = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(report.ok).toBe(false);
    expect(problems(report)).toEqual([`modified@6:${victim.id}`]);
    expect(report.findings[0]?.message).toMatch(/completed entry differs from what record 6/);
    // The others are still served.
    expect((await ledger.get(requests[1]!.id))?.status).toBe('ok');
  });

  it('a modified chain record is named', async () => {
    const { ledger, path, requests } = await filled();
    tamper(path, (db) => db.prepare("UPDATE ledger_chain SET body = replace(body, '\"injections\":1', '\"injections\":7') WHERE seq = 4").run());
    const report = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(problems(report)).toContain(`modified@4:${requests[1]!.id}`);
    await expect(ledger.get(requests[1]!.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
  });

  it('a record rewritten with a recomputed hash is caught by its signature and its successor', async () => {
    const { ledger, path, requests } = await filled();
    tamper(path, (db) => {
      const row = db.prepare<[], { body: string; prev_hash: string; recorded_at: number; worker: string }>('SELECT body, prev_hash, recorded_at, worker FROM ledger_chain WHERE seq = 6').get()!;
      const body = row.body.replace('"injections":2', '"injections":5');
      const forged = nextRecord({ seq: 5, hash: row.prev_hash }, { kind: 'completed', requestId: requests[2]!.id, recordedAt: row.recorded_at, body, worker: row.worker });
      db.prepare('UPDATE ledger_chain SET body = ?, body_hash = ?, hash = ? WHERE seq = 6').run(forged.body, forged.bodyHash, forged.hash);
      db.prepare('UPDATE ledger_requests SET result = ? WHERE request_id = ?').run(JSON.stringify(JSON.parse(body)), requests[2]!.id);
    });
    // With the private key, its MAC names it; with the public key alone, its successor's link does.
    const { macKey } = await readAuditKeys(join(dir, 'key.pem'));
    const report = await auditLedger(ledger.auditSource(), signer.publicKey, { macKey: macKey! });
    expect(problems(report)).toEqual(expect.arrayContaining([`modified@6:${requests[2]!.id}`]));
    expect(report.findings.map((f) => f.message).join('\n')).toMatch(/record 6 .* signature/);
    const publicOnly = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(problems(publicOnly)).toEqual(expect.arrayContaining([`modified@6:${requests[2]!.id}`]));
    await expect(ledger.get(requests[2]!.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
  });

  it('records are sealed with MACs that only the private key checks; a forged tail record with a made-up MAC is refused by lookups and the private key, and counted unchecked with the public key alone', async () => {
    const { ledger, path } = await filled(); // checkpoints at 4 and 8, head 10
    const seals: string[] = [];
    for await (const r of ledger.auditSource().chain()) seals.push(r.signature ?? '');
    expect(seals).toHaveLength(10);
    expect(seals.every((seal) => seal.startsWith(RECORD_MAC_PREFIX))).toBe(true);
    const intruder = makeRequest('7.7');
    const result = okResult(intruder, 1);
    tamper(path, (db) => {
      const head = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM ledger_chain ORDER BY seq DESC LIMIT 1').get()!;
      const r = nextRecord(head, { kind: 'completed', requestId: intruder.id, recordedAt: 5_000, body: completedBody(result) }, () => `${RECORD_MAC_PREFIX}${Buffer.alloc(32, 7).toString('base64')}`);
      db.prepare('INSERT INTO ledger_chain (seq, kind, request_id, recorded_at, body, body_hash, prev_hash, hash, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(r.seq, r.kind, r.requestId, r.recordedAt, r.body, r.bodyHash, r.prevHash, r.hash, r.signature!);
      db.prepare("INSERT INTO ledger_requests (request_id, tenant, device, state, status, result, completed_at) VALUES (?, 'h1', 'cl-1', 'completed', 'ok', ?, 5000)").run(intruder.id, JSON.stringify(result));
    });
    await expect(ledger.get(intruder.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    const { macKey } = await readAuditKeys(join(dir, 'key.pem'));
    const keyed = await auditLedger(ledger.auditSource(), signer.publicKey, { macKey: macKey! });
    expect(problems(keyed)).toEqual([`modified@11:${intruder.id}`]);
    expect(keyed.uncheckedTail).toBe(0);
    // The public key checks records 1..8 through the checkpoint at 8; 9..11 wait for the next one.
    const publicOnly = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(publicOnly).toMatchObject({ ok: true, signedThrough: 8, uncheckedTail: 3 });
    // The platform's next checkpoint stops before the forged record, so it never vouches for it.
    await ledger.close();
    const reopened = new SqliteRequestLedger({ path, checkpointIntervalMs: 0 });
    open.push(reopened);
    const publicAfter = await auditLedger(reopened.auditSource(), signer.publicKey);
    expect(publicAfter).toMatchObject({ ok: true, signedThrough: 10, uncheckedTail: 1 });
  });

  it('Ed25519-signed records (NATS, and SQLite files written before MACs) verify with the public key; a MAC only with the private key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const hash = 'a'.repeat(64);
    const signature = sign(null, Buffer.from(`arteria-ledger-record/1\n${hash}`), privateKey).toString('base64');
    expect(recordVerifier(publicKey)(hash, signature)).toBe(true);
    expect(recordVerifier(publicKey)('b'.repeat(64), signature)).toBe(false);
    expect(new LedgerSigner(privateKey).recordVerifier(hash, signature)).toBe(true);
    // A MAC: undefined with the public key alone, checked with the signer's key.
    const mac = new LedgerSigner(privateKey).sealRecord(hash);
    expect(recordVerifier(publicKey)(hash, mac)).toBeUndefined();
    expect(new LedgerSigner(privateKey).recordVerifier(hash, mac)).toBe(true);
    expect(new LedgerSigner(generateKeyPairSync('ed25519').privateKey).recordVerifier(hash, mac)).toBe(false);
  });

  it('a removed chain record is named, with the gap', async () => {
    const { ledger, path, requests } = await filled();
    tamper(path, (db) => db.prepare('DELETE FROM ledger_chain WHERE seq = 5').run());
    const report = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(problems(report)).toContain(`removed@6:${requests[2]!.id}`);
    expect(report.findings.map((f) => f.message).join('\n')).toMatch(/removed before record 6 .* \(records 5\.\.5 missing\)/);
    expect(report.findings.some((f) => f.problem === 'unchained' && f.requestId === requests[2]!.id)).toBe(true);
    await expect(ledger.get(requests[2]!.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
  });

  it('two swapped records are named as out of order', async () => {
    const { ledger, path, requests } = await filled();
    tamper(path, (db) => {
      db.prepare('UPDATE ledger_chain SET seq = -1 WHERE seq = 3').run();
      db.prepare('UPDATE ledger_chain SET seq = 3 WHERE seq = 5').run();
      db.prepare('UPDATE ledger_chain SET seq = 5 WHERE seq = -1').run();
    });
    const report = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(report.findings.filter((f) => f.problem === 'reordered').map((f) => f.requestId)).toEqual(expect.arrayContaining([requests[2]!.id, requests[1]!.id]));
    expect(report.findings.map((f) => f.message).join('\n')).toMatch(/record \d+ \(accepted of request r[0-9a-f]+\) is out of order: it was chained after record/);
  });

  it('a removed tail (chain and lookup rows) is caught by the signed checkpoint', async () => {
    const { ledger, path, requests } = await filled();
    await ledger.close();
    tamper(path, (db) => {
      db.prepare('DELETE FROM ledger_chain WHERE seq >= 9').run();
      db.prepare('DELETE FROM ledger_requests WHERE request_id = ?').run(requests[4]!.id);
    });
    const reopened = new SqliteRequestLedger({ path, checkpointIntervalMs: 0 });
    open.push(reopened);
    const report = await auditLedger(reopened.auditSource(), signer.publicKey);
    expect(problems(report)).toEqual(['truncated@10:-']);
    expect(report.findings[0]?.message).toMatch(/record 10 is covered by a signed checkpoint but is gone \(the chain now ends at record 8\)/);
  });

  it('a forged row inserted with its own chain record fails without the platform key', async () => {
    const { ledger, path } = await filled();
    const intruder = makeRequest('6.6');
    const result = okResult(intruder, 1);
    tamper(path, (db) => {
      const head = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM ledger_chain ORDER BY seq DESC LIMIT 1').get()!;
      const r = nextRecord(head, { kind: 'completed', requestId: intruder.id, recordedAt: 5_000, body: completedBody(result) });
      db.prepare('INSERT INTO ledger_chain (seq, kind, request_id, recorded_at, body, body_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(r.seq, r.kind, r.requestId, r.recordedAt, r.body, r.bodyHash, r.prevHash, r.hash);
      db.prepare("INSERT INTO ledger_requests (request_id, tenant, device, state, status, result, completed_at) VALUES (?, 'h1', 'cl-1', 'completed', 'ok', ?, 5000)").run(intruder.id, JSON.stringify(result));
    });
    await expect(ledger.get(intruder.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    const report = await auditLedger(ledger.auditSource(), signer.publicKey);
    expect(problems(report)).toEqual([`modified@11:${intruder.id}`]);
  });

  it('chains the rows of a ledger written before the chain existed, and records provenance', async () => {
    const path = freshPath();
    const request = makeRequest('2.1');
    const db = new Database(path);
    db.exec(`CREATE TABLE ledger_requests (request_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, device TEXT NOT NULL, algorithm TEXT, accepted_at REAL, request TEXT,
      state TEXT NOT NULL, status TEXT, algorithm_name TEXT, algorithm_version TEXT, algorithm_digest TEXT, error_code TEXT, result TEXT, completed_at REAL)`);
    db.prepare("INSERT INTO ledger_requests (request_id, tenant, device, algorithm, accepted_at, request, state) VALUES (?, 'h1', 'cl-1', ?, 2000, ?, 'accepted')").run(request.id, request.algorithm, JSON.stringify(request));
    db.close();
    signer ??= await loadOrCreateLedgerSigner(join(dir, 'key.pem'));
    const ledger = new SqliteRequestLedger({ path, signer, checkpointIntervalMs: 0 });
    open.push(ledger);
    await ledger.recordResult(okResult(request, 3), { worker: 'host-b:7' });
    expect(await auditLedger(ledger.auditSource(), signer.publicKey)).toMatchObject({ ok: true, records: 2 });
    const p = provenanceOf(request.id, await ledger.auditSource().chainOf(request.id), signer.recordVerifier);
    expect(p).toMatchObject({
      tenant: 'h1',
      device: 'cl-1',
      inputs: [{ sha256: SHA, size: 2048 }],
      status: 'ok',
      algorithm: { version: '1.2.0', digest: `sha256:${'f'.repeat(64)}`, model: { digest: `sha256:${'9'.repeat(64)}` } },
      worker: 'host-b:7',
      resultHash: resultDigest(okResult(request, 3)),
      timings: { acquired: 1_000, computed: 2_900 },
    });
    expect(p.records.map((r) => [r.seq, r.kind, r.intact])).toEqual([[1, 'accepted', true], [2, 'completed', true]]);
  });

  it('lookup rows name their chain records, so the chain needs no index by request; a seq that does not lead to its record is searched past', async () => {
    const { ledger, path, requests } = await filled();
    const db = new Database(path, { readonly: true });
    const indexes = db.prepare<[], { name: string }>("SELECT name FROM pragma_index_list('ledger_chain')").all().map((i) => i.name);
    const named = db.prepare<[], { request_id: string; accepted_seq: number; completed_seq: number }>('SELECT request_id, accepted_seq, completed_seq FROM ledger_requests ORDER BY rowid').all();
    db.close();
    expect(indexes).toEqual([]);
    expect(named.map((r) => [r.request_id, r.accepted_seq, r.completed_seq])).toEqual(requests.map((r, i) => [r.id, 2 * i + 1, 2 * i + 2]));
    // Two rows' seqs swapped: their content still matches the chain, so both are served, and their records listed.
    const [a, b] = [requests[1]!, requests[3]!];
    tamper(path, (edit) => {
      edit.prepare('UPDATE ledger_requests SET accepted_seq = 7, completed_seq = 8 WHERE request_id = ?').run(a.id);
      edit.prepare('UPDATE ledger_requests SET accepted_seq = 3, completed_seq = 4 WHERE request_id = ?').run(b.id);
    });
    const reader = new SqliteRequestLedger({ path, signer, checkpointIntervalMs: 0 });
    open.push(reader);
    expect((await reader.get(a.id))?.result?.recordHash).toBe(resultDigest(okResult(a, 1)));
    expect((await reader.get(b.id))?.result?.recordHash).toBe(resultDigest(okResult(b, 3)));
    expect((await reader.auditSource().chainOf(a.id)).map((r) => [r.seq, r.kind])).toEqual([[3, 'accepted'], [4, 'completed']]);
    expect((await reader.auditSource().chainOf(requests[0]!.id)).map((r) => [r.seq, r.kind])).toEqual([[1, 'accepted'], [2, 'completed']]);
    // A changed result whose row now names another request's record is refused and named, as before.
    tamper(path, (edit) => edit.prepare('UPDATE ledger_requests SET result = ?, completed_seq = 2 WHERE request_id = ?').run(JSON.stringify({ ...okResult(a, 1), output: { injections: 77 } }), a.id));
    await expect(reader.get(a.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    await expect(ledger.get(a.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    expect(problems(await auditLedger(reader.auditSource(), signer.publicKey))).toEqual([`modified@4:${a.id}`]);
  });

  it('a file whose rows name no chain records (made before, with the index by request) is served, audited and refuses tampering as before', async () => {
    const { path, requests } = await filled();
    await Promise.all(open.splice(0).map((l) => l.close()));
    tamper(path, (db) => {
      db.exec('ALTER TABLE ledger_requests DROP COLUMN accepted_seq; ALTER TABLE ledger_requests DROP COLUMN completed_seq;');
      db.exec('CREATE INDEX ledger_chain_request ON ledger_chain (request_id, kind)');
    });
    const ledger = new SqliteRequestLedger({ path, signer, checkpointEvery: 4, checkpointIntervalMs: 0 });
    open.push(ledger);
    for (const [i, r] of requests.entries()) expect((await ledger.get(r.id))?.result?.recordHash).toBe(resultDigest(okResult(r, i)));
    expect((await ledger.auditSource().chainOf(requests[2]!.id)).map((r) => r.seq)).toEqual([5, 6]);
    // New records are named by their rows.
    const later = makeRequest('1.6');
    await ledger.recordAccepted({ requestId: later.id, tenant: later.tenant, device: later.device, algorithm: later.algorithm, acceptedAt: 2_010, request: later });
    await ledger.recordResult(okResult(later, 6));
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT accepted_seq, completed_seq FROM ledger_requests WHERE request_id = ?').get(later.id)).toEqual({ accepted_seq: 11, completed_seq: 12 });
    expect(db.prepare('SELECT accepted_seq FROM ledger_requests WHERE request_id = ?').get(requests[0]!.id)).toEqual({ accepted_seq: null });
    db.close();
    expect(await auditLedger(ledger.auditSource(), signer.publicKey)).toMatchObject({ ok: true, records: 12 });
    const victim = requests[2]!;
    tamper(path, (edit) => edit.prepare('UPDATE ledger_requests SET result = ? WHERE request_id = ?').run(JSON.stringify({ ...okResult(victim, 2), output: { injections: 99 } }), victim.id));
    await expect(ledger.get(victim.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    expect(problems(await auditLedger(ledger.auditSource(), signer.publicKey))).toEqual([`modified@6:${victim.id}`]);
  });

  it('a lookup verifies a record signature once per ledger, not again for records it checked or signed itself', async () => {
    /** A signer whose verifier counts the Ed25519 verifications it makes. */
    class CountingSigner extends LedgerSigner {
      verifications = 0;
      override get recordVerifier(): (hash: string, signature: string) => boolean {
        const verify = super.recordVerifier;
        return (hash, signature) => {
          this.verifications++;
          return verify(hash, signature);
        };
      }
    }
    const counting = new CountingSigner(generateKeyPairSync('ed25519').privateKey);
    const path = freshPath();
    const writer = new SqliteRequestLedger({ path, signer: counting, checkpointIntervalMs: 0 });
    open.push(writer);
    const requests = ['2.1', '2.2', '2.3'].map(makeRequest);
    for (const [i, r] of requests.entries()) {
      await writer.recordAccepted({ requestId: r.id, tenant: r.tenant, device: r.device, algorithm: r.algorithm, acceptedAt: 4_000 + i, request: r });
      await writer.recordResult(okResult(r, i));
    }
    for (const r of [...requests, ...requests]) expect((await writer.get(r.id))?.status).toBe('ok');
    expect(counting.verifications).toBe(0); // signed by this ledger: known good

    // Another process on the same file verifies each record once.
    const reader = new SqliteRequestLedger({ path, signer: counting, checkpointIntervalMs: 0 });
    open.push(reader);
    for (const r of [...requests, ...requests]) expect((await reader.get(r.id))?.result?.recordHash).toBe(resultDigest(okResult(r, requests.indexOf(r))));
    expect(counting.verifications).toBe(2 * requests.length); // accepted and completed, once each

    // A row changed after it was checked is checked again, and refused.
    const victim = requests[1]!;
    tamper(path, (db) => db.prepare('UPDATE ledger_requests SET result = ? WHERE request_id = ?').run(JSON.stringify({ ...okResult(victim, 1), output: { injections: 42 } }), victim.id));
    await expect(reader.get(victim.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    await expect(writer.get(victim.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
  });
});
