import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ArteriaError, type InputRef } from '@arteria/protocol';
import { type FetchOptions, type InputSource, assertAcceptedSize, assertDeclaredDigest, sizeMismatch } from '@arteria/ports';

export interface S3Settings {
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

/**
 * An S3 client with the settings that keep content exact on every S3 API: checksums
 * only where the API requires them (Arteria verifies SHA-256 itself), path style for
 * MinIO and s3rver.
 */
export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    region: settings.region,
    // No key: the SDK's default chain (IAM role for service accounts, instance profile).
    ...(settings.accessKeyId === '' ? {} : { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }),
    forcePathStyle: settings.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new ArteriaError('INVALID_REQUEST', `not an s3:// URI: ${uri}`);
  return { bucket: match[1], key: match[2] };
}

/**
 * Streams one input into memory, checking its size against the request and the limit
 * as it goes and its SHA-256 at the end.
 */
export async function fetchInput(client: S3Client, input: InputRef, options: FetchOptions): Promise<Buffer> {
  assertAcceptedSize(input, options.maxBytes);
  const body = await openBody(client, input, options.signal);
  const hash = createHash('sha256');
  const data = Buffer.allocUnsafe(input.size);
  let offset = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (offset + chunk.length > input.size) {
        throw new ArteriaError('CHECKSUM_MISMATCH', `input ${input.uri} is larger than the declared ${input.size} bytes`);
      }
      chunk.copy(data, offset);
      offset += chunk.length;
      hash.update(chunk);
    }
  } catch (err) {
    body.destroy();
    if (err instanceof ArteriaError) throw err;
    throw new ArteriaError('STORAGE_UNAVAILABLE', `reading ${input.uri} failed: ${(err as Error).message}`, { cause: err });
  }
  if (offset !== input.size) throw sizeMismatch(input, offset);
  assertDeclaredDigest(input, hash.digest('hex'));
  return data;
}

/**
 * Streams one input in chunks of about `chunkBytes` with the same checks as fetchInput:
 * the size as it goes, the SHA-256 when the body ends, so the last step of the iteration
 * throws CHECKSUM_MISMATCH for an object that is not the one declared. Each chunk owns its
 * memory (it can be transferred to another thread).
 */
export async function* streamInput(client: S3Client, input: InputRef, options: FetchOptions & { chunkBytes?: number }): AsyncGenerator<Buffer> {
  assertAcceptedSize(input, options.maxBytes);
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const body = await openBody(client, input, options.signal);
  const hash = createHash('sha256');
  let offset = 0;
  let pending = Buffer.allocUnsafeSlow(Math.min(chunkBytes, Math.max(1, input.size)));
  let filled = 0;
  // One full chunk is held back, so the last one comes only after the digest is verified.
  let held: Buffer | undefined;
  let complete = false;
  try {
    for await (const piece of body as AsyncIterable<Buffer>) {
      if (offset + piece.length > input.size) {
        throw new ArteriaError('CHECKSUM_MISMATCH', `input ${input.uri} is larger than the declared ${input.size} bytes`);
      }
      hash.update(piece);
      offset += piece.length;
      // Small network reads are gathered into chunks: one message per chunk to the algorithm's thread.
      for (let at = 0; at < piece.length; ) {
        const take = Math.min(piece.length - at, pending.length - filled);
        piece.copy(pending, filled, at, at + take);
        filled += take;
        at += take;
        if (filled === pending.length) {
          if (held !== undefined) yield held;
          held = pending;
          pending = Buffer.allocUnsafeSlow(Math.min(chunkBytes, Math.max(1, input.size - offset + (piece.length - at))));
          filled = 0;
        }
      }
    }
    complete = true;
  } catch (err) {
    if (err instanceof ArteriaError || options.signal?.aborted === true) throw err;
    throw new ArteriaError('STORAGE_UNAVAILABLE', `reading ${input.uri} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    if (!complete) body.destroy();
  }
  if (offset !== input.size) throw sizeMismatch(input, offset);
  // The last chunk waits for the digest: whoever has every byte has verified bytes.
  assertDeclaredDigest(input, hash.digest('hex'));
  if (held !== undefined) yield held;
  if (filled > 0) yield pending.subarray(0, filled);
}

async function openBody(client: S3Client, input: InputRef, signal: AbortSignal | undefined): Promise<Readable> {
  const { bucket, key } = parseS3Uri(input.uri);
  // HTTP clients and S3-API servers normalise `.` and `..` in a path: such a key could name
  // another object than the one admitted. No key a device writes has them.
  if (bucket === '.' || bucket === '..' || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new ArteriaError('INPUT_NOT_FOUND', `input ${input.uri} does not exist (a key with . or .. segments names no stored object)`);
  }
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return response.Body as Readable;
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket') {
      throw new ArteriaError('INPUT_NOT_FOUND', `input ${input.uri} does not exist`, { cause: err });
    }
    throw new ArteriaError('STORAGE_UNAVAILABLE', `fetching ${input.uri} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Inputs fetched over the S3 API: AWS S3, MinIO, Ceph, the embedded store from another process. */
export function s3InputSource(client: S3Client): InputSource {
  return { fetch: (input, options) => fetchInput(client, input, options), stream: (input, options) => streamInput(client, input, options) };
}
