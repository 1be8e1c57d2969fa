import { createHash } from 'node:crypto';
import { ArteriaError } from '@arteria/protocol';
import type { PartStore } from './part-store.js';

const MD5_HEX = /^[0-9a-f]{32}$/;
/** The embedded store's ETag of a single-request object: the SHA-256 of its bytes. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** True unless the ETag, where it is a digest of the bytes (an MD5 as S3's, a SHA-256 as the embedded store's), names other bytes. */
function etagAllows(etag: string | undefined, bytes: Buffer): boolean {
  if (etag !== undefined && MD5_HEX.test(etag)) return etag === createHash('md5').update(bytes).digest('hex');
  if (etag !== undefined && SHA256_HEX.test(etag)) return etag === createHash('sha256').update(bytes).digest('hex');
  return true;
}

/**
 * Writes `bytes` as the object `key`, once. Objects are written once (an upload grant for a
 * key already stored is refused with OBJECT_EXISTS), so a PUT whose answer was lost, or a
 * gateway stopped between the store's answer and its own record of it, leaves an object
 * that a second PUT may not replace: it counts as written when it holds these bytes (its
 * size, and its ETag where that is the bytes' MD5 or SHA-256). An object with other bytes is
 * CHECKSUM_MISMATCH, which no retry changes. Returns the object's ETag when known.
 */
export async function putOnce(store: PartStore, key: string, bytes: Buffer, signal: AbortSignal): Promise<string | undefined> {
  try {
    return await store.putObject(key, bytes, signal);
  } catch (err) {
    if (!(err instanceof ArteriaError) || err.code !== 'OBJECT_EXISTS') throw err;
    const head = await store.head(key, signal);
    if (head === undefined) throw err; // refused as stored, yet not there: the grant's answer stands (retried)
    // Another ETag (a store that encrypts with its own keys) cannot say more than the size; the platform checks the SHA-256.
    if (head.size !== bytes.length || !etagAllows(head.etag, bytes)) {
      throw new ArteriaError('CHECKSUM_MISMATCH', `${key} is already stored with other bytes (${head.size} bytes, ETag ${head.etag ?? 'none'}; these are ${bytes.length} bytes); objects are written once`, { cause: err });
    }
    return head.etag;
  }
}

/** An upload failure no retry changes: the run's source is gone, or its key holds other bytes (objects are written once). */
export const isFinalUploadError = (error: ArteriaError): boolean => error.code === 'INPUT_NOT_FOUND' || error.code === 'CHECKSUM_MISMATCH';
