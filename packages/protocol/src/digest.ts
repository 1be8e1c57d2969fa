import { hash } from 'node:crypto';
import type { ResultV1 } from './schemas.js';

/**
 * JSON with object keys sorted at every level, so the same value always hashes the same
 * whatever order its producer wrote the keys in. `undefined` members are left out, as
 * JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** One-shot, without a Hash object per call: the ledger hashes several times per request. */
export const sha256Hex = (text: string): string => hash('sha256', text, 'hex');

/** The result as the ledger records it: without its own digest and the gateway's receipt stamp. */
export function recordedResult(result: ResultV1): ResultV1 {
  const { recordHash: _digest, ...rest } = result;
  const { received: _received, ...timings } = rest.timings;
  return { ...rest, timings };
}

/** `sha256:` of a result's recorded form: what `ResultV1.recordHash` carries. */
export function resultDigest(result: ResultV1): string {
  return `sha256:${sha256Hex(canonicalJson(recordedResult(result)))}`;
}
