import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ArteriaError, type InputRef } from '@arteria/protocol';
import { assertAcceptedSize, assertDeclaredDigest, sizeMismatch } from './verify.js';

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
export async function fetchInput(client: S3Client, input: InputRef, options: { maxBytes: number; signal?: AbortSignal }): Promise<Buffer> {
  assertAcceptedSize(input, options.maxBytes);
  const { bucket, key } = parseS3Uri(input.uri);
  let body: Readable;
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: options.signal });
    body = response.Body as Readable;
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket') {
      throw new ArteriaError('INPUT_NOT_FOUND', `input ${input.uri} does not exist`, { cause: err });
    }
    throw new ArteriaError('STORAGE_UNAVAILABLE', `fetching ${input.uri} failed: ${(err as Error).message}`, { cause: err });
  }
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
