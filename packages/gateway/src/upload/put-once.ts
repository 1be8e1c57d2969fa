import { ArteriaError } from '@arteria/protocol';
import { etagNamesOtherBytes } from './etag.js';
import type { PartStore } from './part-store.js';

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
    if (head.size !== bytes.length || etagNamesOtherBytes(head.etag, bytes)) {
      throw new ArteriaError('CHECKSUM_MISMATCH', `${key} is already stored with other bytes (${head.size} bytes, ETag ${head.etag ?? 'none'}; these are ${bytes.length} bytes); objects are written once`, { cause: err });
    }
    return head.etag;
  }
}

/** An upload failure no retry changes: the run's source is gone, or its key holds other bytes (objects are written once). */
export const isFinalUploadError = (error: ArteriaError): boolean => error.code === 'INPUT_NOT_FOUND' || error.code === 'CHECKSUM_MISMATCH';
