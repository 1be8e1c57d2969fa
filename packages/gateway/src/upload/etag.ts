import { createHash } from 'node:crypto';

// ETags that say which bytes an object holds: S3's MD5 of a single-request object or part,
// and the embedded store's SHA-256. Other ETags (stores that encrypt with their own keys)
// say nothing of the bytes.

const MD5_HEX = /^[0-9a-f]{32}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The digest an ETag is, if it is one. */
export function etagDigest(etag: string): 'md5' | 'sha256' | undefined {
  if (MD5_HEX.test(etag)) return 'md5';
  return SHA256_HEX.test(etag) ? 'sha256' : undefined;
}

/** True when `etag` is a digest (MD5 or SHA-256) of exactly these bytes. */
export function etagIsDigestOf(etag: string, bytes: Uint8Array): boolean {
  const digest = etagDigest(etag);
  return digest !== undefined && createHash(digest).update(bytes).digest('hex') === etag;
}

/** True when `etag` is a digest (MD5 or SHA-256) of other bytes; an ETag that is no digest contradicts nothing. */
export function etagNamesOtherBytes(etag: string | undefined, bytes: Uint8Array): boolean {
  return etag !== undefined && etagDigest(etag) !== undefined && !etagIsDigestOf(etag, bytes);
}
