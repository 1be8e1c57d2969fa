import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';
import { DATA_FILE, partLocation, type PartLocation } from './store-parts.js';

// CompleteMultipartUpload for the embedded store. s3rver assembles an object by piping
// every part through one stream and an MD5 of the whole object: the biggest share of a
// large upload's time on this store, and the object file is replaced in place while it is
// written. Here, when the parts sit side by side in the upload's own file (store-parts.ts:
// parts 1..K, all of one size but the last), that file is cut to length and renamed into
// place; otherwise they are copied side by side into a new file, renamed once whole. The
// object's ETag is made as S3 makes a multipart ETag (MD5 of the parts' binary ETags, dash,
// part count), from the parts' ETags, which are their SHA-256s here.

const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
/** A part list of 10,000 parts is about 1 MB of XML. */
const MAX_BODY_BYTES = 2 * 1024 * 1024;
/** Parts copied at once, each through a buffer of CHUNK_BYTES. */
const COPY_CONCURRENCY = 4;
const CHUNK_BYTES = 4 * 1024 * 1024;
/** Metadata s3rver keeps from the initiating request's headers (its S3Object.ALLOWED_METADATA). */
const KEPT_METADATA = new Set(['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-type', 'expires', 'x-amz-storage-class', 'x-amz-website-redirect-location']);

const xml = (value: string): string => value.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c);

/** A refusal S3 would give, as status, code and message. */
class CompleteError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new CompleteError(400, 'MalformedXML', 'The part list is too long.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The `<Part>` entries of a CompleteMultipartUpload body, in the order given. */
export function parsePartList(body: string): { partNumber: number; etag: string }[] {
  const parts: { partNumber: number; etag: string }[] = [];
  for (const [, inner = ''] of body.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const partNumber = Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1]);
    const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1]?.replace(/&quot;|&#34;|"/g, '').trim();
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000 || etag === undefined) {
      throw new CompleteError(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    }
    parts.push({ partNumber, etag });
  }
  if (parts.length === 0) throw new CompleteError(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
  return parts;
}

/** Each listed part as stored (where, size, ETag), checked as S3 does: ascending numbers, every part there with the ETag given. */
async function storedParts(folder: string, listed: readonly { partNumber: number; etag: string }[]): Promise<(PartLocation & { etag: string })[]> {
  for (let i = 1; i < listed.length; i += 1) {
    if ((listed[i]?.partNumber ?? 0) <= (listed[i - 1]?.partNumber ?? 0)) throw new CompleteError(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
  }
  return Promise.all(
    listed.map(async ({ partNumber, etag }) => {
      const where = await partLocation(folder, partNumber);
      if (where?.etag !== etag) throw new CompleteError(400, 'InvalidPart', `Part ${partNumber} was not uploaded, or its ETag does not match the one given.`);
      return where;
    }),
  );
}

/** Copies the parts side by side into `target` (a new file), COPY_CONCURRENCY at a time, a chunk at a time (memory does not grow with the part size). */
async function assemble(target: string, parts: readonly PartLocation[]): Promise<void> {
  const offsets: number[] = [];
  let total = 0;
  for (const part of parts) {
    offsets.push(total);
    total += part.size;
  }
  const handle = await open(target, 'w');
  try {
    let next = 0;
    const copier = async (): Promise<void> => {
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      for (let i = next++; i < parts.length; i = next++) {
        const part = await open(parts[i]?.file ?? '', 'r');
        try {
          for (let done = 0; ; ) {
            const { bytesRead } = await part.read(buffer, 0, Math.min(CHUNK_BYTES, (parts[i]?.size ?? 0) - done), (parts[i]?.offset ?? 0) + done);
            if (bytesRead === 0) break;
            for (let written = 0; written < bytesRead; ) {
              written += (await handle.write(buffer, written, bytesRead - written, (offsets[i] ?? 0) + done + written)).bytesWritten;
            }
            done += bytesRead;
          }
        } finally {
          await part.close();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, parts.length) }, copier));
  } finally {
    await handle.close();
  }
}

/** The initiating request's metadata, kept as s3rver keeps an object's. */
async function objectMetadata(folder: string): Promise<Record<string, string>> {
  const headers = JSON.parse(await readFile(path.join(folder, 'metadata'), 'utf8')) as Record<string, unknown>;
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string' && (KEPT_METADATA.has(name) || name.startsWith('x-amz-meta-'))) kept[name] = value;
  }
  kept['content-type'] ??= 'binary/octet-stream';
  return kept;
}

/**
 * Answers a CompleteMultipartUpload of the upload in `folder` (s3rver's upload folder,
 * known to hold an upload of this key): assembles the object, writes its ETag and
 * metadata where s3rver reads them, moves the object into place and removes the upload.
 */
export async function completeUpload(req: IncomingMessage, res: ServerResponse, root: string, folder: string, bucket: string, key: string): Promise<void> {
  let answer: { status: number; body: string };
  try {
    const listed = parsePartList(await readBody(req));
    const parts = await storedParts(folder, listed);
    const store = new FilesystemStore(root);
    const objectPath = store.getResourcePath(bucket, key, 'object');
    const data = path.join(folder, DATA_FILE);
    const slot = parts[0]?.size ?? 0;
    const inPlace = parts.every((p, i) => listed[i]?.partNumber === i + 1 && p.file === data && p.offset === i * slot && (i === parts.length - 1 || p.size === slot));
    const assembling = inPlace ? data : path.join(folder, 'object.assembling');
    if (inPlace) await truncate(data, parts.reduce((n, p) => n + p.size, 0));
    else await assemble(assembling, parts);
    const etag = `${createHash('md5').update(Buffer.concat(parts.map((p) => Buffer.from(p.etag, 'hex')))).digest('hex')}-${parts.length}`;
    await mkdir(path.dirname(objectPath), { recursive: true });
    await Promise.all([
      writeFile(store.getResourcePath(bucket, key, 'object.md5'), etag),
      objectMetadata(folder).then((metadata) => writeFile(store.getResourcePath(bucket, key, 'metadata.json'), JSON.stringify(metadata, null, 2))),
    ]);
    // Whole before it is visible: a reader sees no object or all of it.
    await rename(assembling, objectPath);
    await rm(folder, { recursive: true, force: true });
    answer = {
      status: 200,
      body:
        `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="${S3_NS}"><Location>/${xml(bucket)}/${xml(key)}</Location>` +
        `<Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><ETag>&quot;${etag}&quot;</ETag></CompleteMultipartUploadResult>`,
    };
  } catch (err) {
    if (!(err instanceof CompleteError)) throw err;
    answer = { status: err.status, body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xml(err.code)}</Code><Message>${xml(err.message)}</Message></Error>` };
  }
  res.writeHead(answer.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
}
