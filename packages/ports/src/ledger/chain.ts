import { canonicalJson, sha256Hex, recordedResult, type RequestV1, type ResultV1 } from '@arteria/protocol';
import type { RecordSealCheck } from './checkpoint.js';

/**
 * The ledger's hash chain. Every accepted request and every recorded result is appended
 * as a record that commits to the record before it, so a record changed, removed or
 * moved outside the platform breaks the chain where it happened. Signed checkpoints
 * (checkpoint.ts) commit to the chain's head, so a removed tail is caught too.
 */
export type ChainKind = 'accepted' | 'completed';

export interface ChainRecord {
  /** Position in the chain, from 1. */
  seq: number;
  kind: ChainKind;
  requestId: string;
  /** Epoch ms. */
  recordedAt: number;
  /** The worker that produced a result, where the adapter knows it. */
  worker?: string;
  /** Canonical JSON of what was recorded (chainBody). */
  body: string;
  /** `sha256:` of body; for a result, equals `ResultV1.recordHash`. */
  bodyHash: string;
  /** Hex hash of the record before (GENESIS_HASH for the first). */
  prevHash: string;
  /** Hex hash of this record's link (linkHash). */
  hash: string;
  /**
   * The record's seal over `hash` under the platform's key: `hmac-sha256:<base64>`, a MAC
   * under a key derived from the private key (SQLite, since 2026-12-05), or a base64
   * Ed25519 signature (NATS, and SQLite records written before). Without the private key nobody can add a record that passes
   * the platform's checks, not even at the tail. Absent when the ledger has no key.
   */
  signature?: string;
}

/** The chain's anchor: what the first record's prevHash is. */
export const GENESIS_HASH = sha256Hex('arteria-ledger/1 genesis');

export const bodyHashOf = (body: string): string => `sha256:${sha256Hex(body)}`;

/** What an accepted record's body holds. */
export function acceptedBody(entry: { tenant: string; device: string; algorithm: string; acceptedAt: number; request: RequestV1 }): string {
  const { tenant, device, algorithm, acceptedAt, request } = entry;
  return canonicalJson({ tenant, device, algorithm, acceptedAt, request });
}

/** A result record's body is the result as recorded, so its bodyHash is the result's digest. */
export const completedBody = (result: ResultV1): string => canonicalJson(recordedResult(result));

/** The link: every field of the record but the stored hash, and the previous record's hash. */
export function linkHash(r: Omit<ChainRecord, 'hash' | 'body'>): string {
  return sha256Hex(['arteria-ledger/1', r.prevHash, String(r.seq), r.kind, r.requestId, String(r.recordedAt), r.worker ?? '', r.bodyHash].join('\n'));
}

/** Builds the next record after `previous` (undefined: the first). */
export function nextRecord(
  previous: Pick<ChainRecord, 'seq' | 'hash'> | undefined,
  fields: Pick<ChainRecord, 'kind' | 'requestId' | 'recordedAt' | 'body'> & { worker?: string | undefined },
  sign?: (hash: string) => string,
): ChainRecord {
  const link = {
    seq: (previous?.seq ?? 0) + 1,
    kind: fields.kind,
    requestId: fields.requestId,
    recordedAt: fields.recordedAt,
    ...(fields.worker !== undefined ? { worker: fields.worker } : {}),
    bodyHash: bodyHashOf(fields.body),
    prevHash: previous?.hash ?? GENESIS_HASH,
  };
  const hash = linkHash(link);
  return { ...link, body: fields.body, hash, ...(sign ? { signature: sign(hash) } : {}) };
}

/**
 * Why a record cannot be trusted as it stands; undefined when it is intact by itself.
 * `verifySignature`: the platform's key check; none: signatures are not checked. A seal the
 * check cannot tell (a MAC, with the public key only) is no defect by itself: the audit
 * counts such records after the newest checkpoint.
 */
export function recordDefect(r: ChainRecord, verifySignature?: RecordSealCheck): string | undefined {
  if (bodyHashOf(r.body) !== r.bodyHash) return 'its content differs from the digest it was chained with';
  if (linkHash(r) !== r.hash) return 'its fields differ from the hash it was chained with';
  if (verifySignature !== undefined) {
    if (r.signature === undefined) return 'it carries no signature of the platform\'s key';
    if (verifySignature(r.hash, r.signature) === false) return 'its signature is not the platform key\'s';
  }
  return undefined;
}
