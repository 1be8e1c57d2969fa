import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ArteriaError } from '@arteria/protocol';
import type { BandwidthLimiter } from './bandwidth.js';
import { MIN_PART_SIZE_BYTES } from './config.js';

export interface UploadTarget {
  bucket: string;
  key: string;
  /** A file path (streamed, never read whole) or bytes already in memory. */
  source: string | Uint8Array;
}

export interface UploadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** Multipart part number that just completed; undefined for a single-request upload. */
  part?: number;
}

export interface UploadOptions {
  signal?: AbortSignal;
  onProgress?: (progress: UploadProgress) => void;
  partSizeBytes?: number;
  /** Parts in flight at once. */
  concurrency?: number;
  /** Shared upload bandwidth cap (file sources only). */
  limiter?: BandwidthLimiter;
}

export interface UploadedObject {
  /** `s3://bucket/key` */
  uri: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes that were uploaded. */
  sha256: string;
}

/**
 * Object key of a run: `{tenant}/{device}/{instanceUid}/{entryId}.dcm`. The outbox entry
 * id is fixed when the run is accepted, before any byte is read, so the upload streams
 * without a separate hashing pass, and every retry (also after a restart) overwrites the
 * same object instead of leaving copies behind.
 */
export const runObjectKey = (parts: { tenant: string; device: string; instanceUid: string; entryId: string }): string =>
  `${parts.tenant}/${parts.device}/${parts.instanceUid}/${parts.entryId}.dcm`;

/**
 * Streams a run to object storage (multipart above one part) and computes its SHA-256
 * on the way, then checks that the stored object has the size that was read. Failures
 * are UPLOAD_FAILED (retryable), a missing source file INPUT_NOT_FOUND; an abort rejects
 * with the signal's reason.
 */
export async function uploadRun(client: S3Client, target: UploadTarget, options: UploadOptions = {}): Promise<UploadedObject> {
  const { signal, onProgress } = options;
  signal?.throwIfAborted();
  const partSize = Math.max(options.partSizeBytes ?? MIN_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES);
  const hash = createHash('sha256');
  let size = 0;
  let totalBytes: number;
  if (typeof target.source === 'string') {
    try {
      totalBytes = (await stat(target.source)).size;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ArteriaError('INPUT_NOT_FOUND', `run file ${target.source} does not exist`, { cause: err });
      throw new ArteriaError('UPLOAD_FAILED', `cannot read run file ${target.source}: ${(err as Error).message}`, { cause: err });
    }
  } else {
    totalBytes = target.source.byteLength;
  }

  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });

  let body: Transform | Buffer;
  let pumping: Promise<void> = Promise.resolve();
  if (typeof target.source === 'string') {
    const limiter = options.limiter;
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        if (limiter === undefined) callback(null, chunk);
        else limiter.take(chunk.length, controller.signal).then(() => callback(null, chunk), (err: unknown) => callback(err as Error));
      },
    });
    pumping = pipeline(createReadStream(target.source, { highWaterMark: options.limiter?.bytesPerSecond === undefined ? 1024 * 1024 : 64 * 1024 }), hasher, { signal: controller.signal });
    body = hasher;
  } else {
    const bytes = Buffer.from(target.source.buffer, target.source.byteOffset, target.source.byteLength);
    hash.update(bytes);
    size = bytes.length;
    body = bytes;
  }

  const upload = new Upload({
    client,
    params: { Bucket: target.bucket, Key: target.key, Body: body, ContentType: 'application/dicom' },
    partSize,
    queueSize: options.concurrency ?? 4,
    leavePartsOnError: false,
    abortController: controller,
  });
  upload.on('httpUploadProgress', (progress) =>
    onProgress?.({ loadedBytes: progress.loaded ?? 0, totalBytes, ...(upload.uploadId === undefined ? {} : { part: progress.part }) }),
  );

  try {
    await Promise.all([upload.done(), pumping]);
    const head = await client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key }), { abortSignal: controller.signal });
    if (head.ContentLength !== size) {
      throw new Error(`stored object has ${head.ContentLength ?? 'unknown'} bytes; ${size} were uploaded`);
    }
  } catch (err) {
    controller.abort(err);
    if (signal?.aborted) throw signal.reason;
    if (err instanceof ArteriaError) throw err;
    const cause = err as NodeJS.ErrnoException;
    if (cause.code === 'ENOENT') throw new ArteriaError('INPUT_NOT_FOUND', `run file ${String(target.source)} does not exist`, { cause: err });
    throw new ArteriaError('UPLOAD_FAILED', `upload of s3://${target.bucket}/${target.key} failed: ${cause.message ?? String(err)}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { uri: `s3://${target.bucket}/${target.key}`, size, sha256: hash.digest('hex') };
}
