import type { KeyObject } from 'node:crypto';
import { GENESIS_HASH, recordDefect, type ChainKind, type ChainRecord } from './chain.js';
import { checkpointDefect, recordVerifier, type Checkpoint, type RecordSealCheck } from './checkpoint.js';

/** What an adapter exposes for `arteria audit`: its chain, checkpoints and lookup entries, as stored. */
export interface AuditSource {
  /** Every chain record, in stored order (whatever order someone may have left them in). */
  chain(): AsyncIterable<ChainRecord> | Iterable<ChainRecord>;
  checkpoints(): Promise<Checkpoint[]>;
  /** The lookup side (what get() serves from), hashed the way the chain hashes it. */
  index(): AsyncIterable<IndexEntry> | Iterable<IndexEntry>;
  /** The chain records of one request, with the record after each (to check its link). */
  chainOf(requestId: string): Promise<ChainRecord[]>;
}

export interface IndexEntry {
  requestId: string;
  kind: ChainKind;
  /** bodyHash of what the entry holds; 'unreadable' when it does not parse. */
  bodyHash: string;
  /** The chain record the entry names, where the adapter stores that link (NATS). */
  recordHash?: string;
}

export type AuditProblem = 'modified' | 'removed' | 'reordered' | 'truncated' | 'unchained' | 'unindexed' | 'checkpoint';

export interface AuditFinding {
  problem: AuditProblem;
  /** The chain record concerned, where there is one. */
  seq?: number;
  requestId?: string;
  message: string;
}

export interface AuditReport {
  ok: boolean;
  records: number;
  headSeq: number;
  headHash: string;
  checkpoints: number;
  /** Highest record covered by a valid checkpoint (0: none). */
  signedThrough: number;
  /**
   * Records after `signedThrough` sealed with a MAC this audit could not check (it had the
   * public key only): until the next checkpoint covers them, only the private key tells
   * them from records someone with write access to the store added. 0 with the private key.
   */
  uncheckedTail: number;
  findings: AuditFinding[];
}

const describe = (r: ChainRecord): string => `record ${r.seq} (${r.kind} of request ${r.requestId})`;

/**
 * Walks the whole chain and names every record that was modified, removed or moved, then
 * checks the signed checkpoints (a removed tail) and that the lookup side matches the
 * chain (an entry changed or inserted where get() reads it). `trusted`: the platform's
 * public key; without it checkpoints are checked against the key they name. `macKey`
 * (from the private key): the records' MACs are checked too, not only the checkpoints.
 */
export async function auditLedger(source: AuditSource, trusted?: KeyObject, options: { macKey?: Buffer } = {}): Promise<AuditReport> {
  const findings: AuditFinding[] = [];
  const records: ChainRecord[] = [];
  for await (const r of source.chain()) records.push(r);
  const positionOfHash = new Map(records.map((r, i) => [r.hash, i] as const));
  const check = trusted === undefined ? undefined : recordVerifier(trusted, options.macKey);
  const unchecked = new Set<string>();
  const verifySignature: RecordSealCheck | undefined =
    check &&
    ((hash, seal) => {
      const ok = check(hash, seal);
      if (ok === undefined) unchecked.add(hash);
      return ok;
    });
  let previous: ChainRecord | undefined;
  records.forEach((r, i) => {
    const defect = recordDefect(r, verifySignature);
    if (defect !== undefined) findings.push({ problem: 'modified', seq: r.seq, requestId: r.requestId, message: `${describe(r)} was modified: ${defect}` });
    const expected = previous?.hash ?? GENESIS_HASH;
    if (r.prevHash !== expected) {
      const chainedAfter = positionOfHash.get(r.prevHash);
      const before = chainedAfter === undefined ? undefined : records[chainedAfter];
      if (before !== undefined && chainedAfter !== i - 1) {
        findings.push({ problem: 'reordered', seq: r.seq, requestId: r.requestId, message: `${describe(r)} is out of order: it was chained after ${describe(before)}` });
      } else if (previous !== undefined && r.seq === previous.seq + 1) {
        findings.push({ problem: 'modified', seq: previous.seq, requestId: previous.requestId, message: `${describe(previous)} was rewritten or replaced: ${describe(r)} was chained after a different record` });
      } else {
        const gap = previous === undefined ? (r.seq > 1 ? ` (records 1..${r.seq - 1} missing)` : '') : r.seq > previous.seq + 1 ? ` (records ${previous.seq + 1}..${r.seq - 1} missing)` : '';
        findings.push({ problem: 'removed', seq: r.seq, requestId: r.requestId, message: `record(s) removed before ${describe(r)}${gap}` });
      }
    }
    previous = r;
  });

  const bySeq = new Map(records.map((r) => [r.seq, r] as const));
  const headSeq = previous?.seq ?? 0;
  let signedThrough = 0;
  const checkpoints = await source.checkpoints();
  for (const c of checkpoints) {
    const defect = trusted === undefined ? undefined : checkpointDefect(c, trusted);
    if (defect !== undefined) {
      findings.push({ problem: 'checkpoint', seq: c.seq, message: `checkpoint at record ${c.seq} cannot be trusted: ${defect}` });
      continue;
    }
    const r = bySeq.get(c.seq);
    if (r === undefined) {
      const problem = c.seq > headSeq ? 'truncated' : 'removed';
      findings.push({ problem, seq: c.seq, message: `record ${c.seq} is covered by a signed checkpoint but is gone${c.seq > headSeq ? ` (the chain now ends at record ${headSeq})` : ''}` });
    } else if (r.hash !== c.hash) {
      findings.push({ problem: 'modified', seq: c.seq, requestId: r.requestId, message: `${describe(r)} differs from the signed checkpoint at that record` });
    } else {
      signedThrough = Math.max(signedThrough, c.seq);
    }
  }

  const chained = new Map<string, ChainRecord>(records.map((r) => [`${r.requestId}/${r.kind}`, r]));
  const indexed = new Set<string>();
  for await (const e of source.index()) {
    const key = `${e.requestId}/${e.kind}`;
    indexed.add(key);
    const r = e.recordHash !== undefined ? records[positionOfHash.get(e.recordHash) ?? -1] : chained.get(key);
    if (r === undefined || r.requestId !== e.requestId || r.kind !== e.kind) {
      findings.push({ problem: 'unchained', requestId: e.requestId, message: `request ${e.requestId}: its ${e.kind} entry has no chain record (written outside the platform)` });
    } else if (r.bodyHash !== e.bodyHash) {
      findings.push({ problem: 'modified', seq: r.seq, requestId: e.requestId, message: `request ${e.requestId}: its ${e.kind} entry differs from what ${describe(r)} holds` });
    }
  }
  for (const [key, r] of chained) {
    if (!indexed.has(key)) findings.push({ problem: 'unindexed', seq: r.seq, requestId: r.requestId, message: `request ${r.requestId}: the ${r.kind} entry chained at record ${r.seq} is missing from the ledger's lookup side` });
  }
  const uncheckedTail = records.filter((r) => r.seq > signedThrough && unchecked.has(r.hash)).length;
  return { ok: findings.length === 0, records: records.length, headSeq, headHash: previous?.hash ?? GENESIS_HASH, checkpoints: checkpoints.length, signedThrough, uncheckedTail, findings };
}

/**
 * The per-request check get() makes before serving an entry: the chain record exists, is
 * intact, holds what the lookup side holds, and the record after it (if any) is chained
 * to it. Cheap (two records), unlike auditLedger. Returns why it fails, or undefined.
 */
export function entryDefect(
  kind: ChainKind,
  bodyHash: string,
  record: ChainRecord | undefined,
  next: Pick<ChainRecord, 'seq' | 'prevHash'> | undefined,
  verifySignature?: RecordSealCheck,
): string | undefined {
  if (record === undefined) return `its ${kind} entry has no chain record`;
  const defect = recordDefect(record, verifySignature);
  if (defect !== undefined) return `chain record ${record.seq}: ${defect}`;
  if (record.bodyHash !== bodyHash) return `its ${kind} entry differs from chain record ${record.seq}`;
  if (next !== undefined && next.prevHash !== record.hash) return `chain record ${next.seq} is not chained to record ${record.seq}`;
  return undefined;
}
