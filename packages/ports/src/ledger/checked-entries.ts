import { hash } from 'node:crypto';
import type { ChainKind } from './chain.js';

/**
 * What a ledger's per-lookup chain check has already computed in this process, so that a
 * lookup does not pay again for the two costly parts of it: the body hash of an entry (the
 * canonical JSON of a whole request or result, hashed), remembered by a digest of the
 * entry's stored form, and the Ed25519 verification of a chain record's signature,
 * remembered for the (hash, signature) pairs that passed. Both are pure functions of what
 * they are remembered by, so the check itself is unchanged: the chain record is still read
 * and compared on every lookup, and an entry or record changed outside the platform has
 * another digest or pair and is checked in full. Bounded: the oldest are forgotten first.
 * Body hashes are remembered at an entry's first lookup, not when it is written: most
 * entries are never looked up again, and a hash at every write cost the main thread more
 * than the lookups it saved.
 */
export class CheckedEntries {
  readonly #max: number;
  /** `${kind}/${requestId}` → digest of the stored form and its body hash. */
  readonly #bodies = new Map<string, { digest: string; bodyHash: string }>();
  /** `${hash} ${signature}` pairs whose signature verified. */
  readonly #signatures = new Set<string>();

  constructor(max = 10_000) {
    this.#max = max;
  }

  /** A digest of an entry's stored form, from its stored fields in a fixed order. */
  static digest(...stored: ReadonlyArray<string | number | null | undefined>): string {
    // NUL cannot occur in stored JSON or ids, so the fields cannot run into each other. One
    // string hashed at once: no Hash object and one update per field on every record.
    let text = '';
    for (const field of stored) text += `${field === null || field === undefined ? '\u0001' : String(field)}\0`;
    return hash('sha256', text, 'base64');
  }

  /** The body hash of an entry in this stored form: remembered, or computed and remembered. */
  bodyHash(kind: ChainKind, requestId: string, digest: string, compute: () => string): string {
    const key = `${kind}/${requestId}`;
    const known = this.#bodies.get(key);
    if (known?.digest === digest) return known.bodyHash;
    const bodyHash = compute();
    this.#bodies.delete(key);
    this.#bodies.set(key, { digest, bodyHash });
    if (this.#bodies.size > this.#max) dropOldest(this.#bodies);
    return bodyHash;
  }

  /** Notes a record signature as valid (made here with the key the verifier trusts). */
  rememberSignature(hash: string, signature: string): void {
    this.#signatures.add(`${hash} ${signature}`);
    if (this.#signatures.size > this.#max) dropOldest(this.#signatures);
  }

  /** `verify`, remembering the pairs that pass (a failing pair is verified again each time). */
  verifier(verify: (hash: string, signature: string) => boolean): (hash: string, signature: string) => boolean {
    return (hash, signature) => {
      if (this.#signatures.has(`${hash} ${signature}`)) return true;
      const ok = verify(hash, signature);
      if (ok) this.rememberSignature(hash, signature);
      return ok;
    };
  }
}

function dropOldest(entries: Map<string, unknown> | Set<string>): void {
  const oldest = entries.keys().next();
  if (oldest.done !== true) entries.delete(oldest.value);
}
