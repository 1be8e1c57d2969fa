import { ArteriaError, type DeviceAddress, type InputRef } from '@arteria/protocol';

// The checks every input source makes, with the same codes and messages whatever the source.

/** Refuses an input larger than the platform accepts, before a byte is read. */
export function assertAcceptedSize(input: InputRef, maxBytes: number): void {
  if (input.size > maxBytes) {
    throw new ArteriaError('INPUT_TOO_LARGE', `input is ${input.size} bytes; this platform accepts at most ${maxBytes}`);
  }
}

/** The stored object is not the size the request declared. */
export function sizeMismatch(input: InputRef, actual: number): ArteriaError {
  return new ArteriaError('CHECKSUM_MISMATCH', `input ${input.uri} has ${actual} bytes; the request declared ${input.size}`);
}

/** CHECKSUM_MISMATCH for an object that ended after `offset` bytes, before the size it was declared with. */
export function endedEarly(input: InputRef, offset: number): ArteriaError {
  return new ArteriaError('CHECKSUM_MISMATCH', `input ${input.uri} ended after ${offset} bytes; the request declared ${input.size}`);
}

/** Throws CHECKSUM_MISMATCH unless the bytes read hash to the declared SHA-256 (hex). */
export function assertDeclaredDigest(input: InputRef, digest: string): void {
  if (digest !== input.sha256) {
    throw new ArteriaError('CHECKSUM_MISMATCH', `input ${input.uri} has SHA-256 ${digest}; the request declared ${input.sha256}`);
  }
}

/**
 * Refuses (NOT_AUTHORIZED) an input outside the requesting device's own prefix
 * `{tenant}/{device}/`, or whose key has empty, `.` or `..` segments (a store or file
 * system could fold them into another device's key). Ingest checks it at admission and
 * every worker again before it reads a byte.
 */
export function assertInputInScope(input: Pick<InputRef, 'uri'>, requester: DeviceAddress): void {
  const match = /^s3:\/\/[^/]+\/(.+)$/.exec(input.uri);
  const segments = match?.[1]?.split('/') ?? [];
  const inside = segments[0] === requester.tenant && segments[1] === requester.device && segments.length > 2;
  if (!inside || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new ArteriaError('NOT_AUTHORIZED', `input ${input.uri} is outside the storage prefix of ${requester.tenant}/${requester.device}`);
  }
}
