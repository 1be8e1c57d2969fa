import { randomBytes } from 'node:crypto';

/**
 * Arteria's UID root: a UUID-derived OID (ISO/IEC 9834-8, "2.25.<uuid as integer>"),
 * under which Arteria allocates its own arcs without needing a registered root.
 */
export const ARTERIA_UID_ROOT = '2.25.209098949269670200103814492882387157025';

/** 60 bits keep root + "." + suffix within the 64-character UID limit. */
const SUFFIX_MASK = (1n << 60n) - 1n;

/**
 * A new UID under ARTERIA_UID_ROOT. Random by default; with a seed the same seed always
 * gives the same UID (synthetic runs stay byte-for-byte reproducible).
 */
export function newUid(seed?: string | number): string {
  const suffix = seed === undefined ? randomBytes(8).readBigUInt64BE() & SUFFIX_MASK : fnv1a64(String(seed)) & SUFFIX_MASK;
  return `${ARTERIA_UID_ROOT}.${suffix.toString()}`;
}

function fnv1a64(text: string): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}
