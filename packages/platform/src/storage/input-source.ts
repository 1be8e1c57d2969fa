import type { S3Client } from '@aws-sdk/client-s3';
import type { InputRef } from '@arteria/protocol';
import { fetchInput } from './s3.js';

export interface FetchOptions {
  maxBytes: number;
  signal?: AbortSignal;
}

/**
 * Where a worker gets a request's input from. Every source returns exactly the bytes the
 * request declared: the size is checked as the bytes arrive and the SHA-256 at the end,
 * failing with INPUT_TOO_LARGE, INPUT_NOT_FOUND, CHECKSUM_MISMATCH or STORAGE_UNAVAILABLE.
 */
export interface InputSource {
  fetch(input: InputRef, options: FetchOptions): Promise<Buffer>;
}

/** Inputs fetched over the S3 API: AWS S3, MinIO, Ceph, the embedded store from another process. */
export function s3InputSource(client: S3Client): InputSource {
  return { fetch: (input, options) => fetchInput(client, input, options) };
}
