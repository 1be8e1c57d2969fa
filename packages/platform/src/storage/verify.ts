import { ArteriaError, type InputRef } from '@arteria/protocol';

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

/** Throws CHECKSUM_MISMATCH unless the bytes read hash to the declared SHA-256 (hex). */
export function assertDeclaredDigest(input: InputRef, digest: string): void {
  if (digest !== input.sha256) {
    throw new ArteriaError('CHECKSUM_MISMATCH', `input ${input.uri} has SHA-256 ${digest}; the request declared ${input.sha256}`);
  }
}
