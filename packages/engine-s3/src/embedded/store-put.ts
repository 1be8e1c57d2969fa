import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';
import { bodyDigests } from './store-digests.js';
import { answer } from './store-parts.js';

// PutObject for the embedded store. s3rver's own computes the MD5 of every object it stores
// for its ETag (about 23 ms of CPU per 16 MiB on the reference machine, where SHA-256 takes
// 10): in a run sent in segments that was the store thread's largest cost, and it checks
// nothing, since s3rver ignores Content-MD5 on PutObject. It also rewrites an object in
// place, so a reader could see half of one.
//
// Here an object's ETag is the SHA-256 of its bytes (64 hex digits: S3 documents an MD5
// ETag only for unencrypted single-part objects, and a client must not take it for one, as
// it would a 32-digit ETag), computed as the body arrives; a digest the client declares
// for the body is checked against it at no further cost: x-amz-checksum-sha256 and a
// signed payload's x-amz-content-sha256. Content-MD5 is checked when given (an MD5 only
// then). A body that does not match is refused (BadDigest, XAmzContentSHA256Mismatch) and
// nothing is stored; a body is written to a file of its own and renamed into place once
// whole and checked, so a reader sees the old object or the new one. The end-to-end check
// of a run's bytes stays the platform's: the worker hashes what it reads against the
// SHA-256 the gateway announced.

/** Metadata s3rver keeps from a PutObject's headers (its S3Object.ALLOWED_METADATA). */
const KEPT_METADATA = new Set(['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-type', 'expires', 'x-amz-website-redirect-location']);

/**
 * True for the PutObject requests answered here: a body for a key (no subresource such as
 * ?acl or ?tagging, no copy, no storage class) whose path the file system keeps as it is.
 * The rest go to s3rver as before.
 */
export function isPlainPut(req: IncomingMessage, key: string, query: URLSearchParams): boolean {
  if (req.method !== 'PUT' || key === '' || req.headers['x-amz-copy-source'] !== undefined || req.headers['x-amz-storage-class'] !== undefined) return false;
  // A presigned URL's own parameters, and the operation name the AWS SDK adds (x-id=PutObject).
  for (const [name, value] of query) if (!name.toLowerCase().startsWith('x-amz-') && !(name === 'x-id' && value === 'PutObject')) return false;
  return !key.split('/').some((part) => part === '' || part === '.' || part === '..');
}

/** Answers a plain PutObject (isPlainPut) of `key` in `bucket`. */
export async function putObject(req: IncomingMessage, res: ServerResponse, root: string, bucket: string, key: string): Promise<void> {
  const store = new FilesystemStore(root);
  const bucketPath = path.join(root, bucket);
  const objectPath = store.getResourcePath(bucket, key, 'object');
  const isBucket = await stat(bucketPath).then((s) => s.isDirectory(), () => false);
  if (bucket.includes('/') || bucket.startsWith('.') || !isBucket || !objectPath.startsWith(bucketPath + path.sep)) {
    req.resume();
    return answer(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  }
  const digests = bodyDigests(req);
  await mkdir(path.dirname(objectPath), { recursive: true });
  // Not a name s3rver lists (its objects end in ._S3rver_object), in the object's folder so the rename stays on one file system.
  const writing = `${objectPath}.${randomBytes(8).toString('hex')}.put`;
  let stored = false;
  try {
    // Written chunk by chunk as the socket hands them over. Gathering them into one writev of 1 MiB (main 435b4dd,
    // reverted) took the store's thread less CPU, but over the shaped link the platform finished 419 MB segmented runs
    // later after their last segment was stored (perhaps the worker's segment reads waiting behind the longer writes on
    // libuv's four file-system threads; not verified).
    await pipeline(
      req,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          digests.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(writing),
    );
    const { etag, refusal } = digests.finish();
    if (refusal !== undefined) return answer(res, 400, refusal.code, refusal.message);
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && (KEPT_METADATA.has(name) || name.startsWith('x-amz-meta-'))) metadata[name] = value;
    }
    metadata['content-type'] ??= 'binary/octet-stream';
    await Promise.all([
      writeFile(store.getResourcePath(bucket, key, 'object.md5'), etag), // s3rver's name for the file that holds an object's ETag
      writeFile(store.getResourcePath(bucket, key, 'metadata.json'), JSON.stringify(metadata, null, 2)),
    ]);
    await rename(writing, objectPath);
    stored = true;
    res.writeHead(200, { etag: `"${etag}"`, ...(digests.checksumSha256 === undefined ? {} : { 'x-amz-checksum-sha256': digests.checksumSha256 }), 'content-length': 0 });
    res.end();
  } finally {
    if (!stored) await rm(writing, { force: true });
  }
}
