import { readFile, readdir, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import path from 'node:path';
import { completeUpload } from './store-complete.js';
import { partLocation, uploadPart } from './store-parts.js';
import { isPlainPut, putObject } from './store-put.js';

// s3rver keeps a multipart upload in `{root}/{bucket}/._S3rver_uploads/{uploadId}/` (files
// `key`, `metadata`, and per part `N` plus `N.md5` once the part is complete) but has no
// ListParts, AbortMultipartUpload or ListMultipartUploads, which resumable uploads need.
// These answer them from the same folder, as S3 does; UploadPart (store-parts.ts) and
// CompleteMultipartUpload (store-complete.ts) are answered here too, so that a completed
// upload is renamed into place rather than copied, and so is a plain PutObject
// (store-put.ts: its ETag is a SHA-256, not s3rver's MD5).

const UPLOADS_FOLDER = '._S3rver_uploads';
const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const MAX_PAGE = 1000;

const xml = (value: string | number | boolean): string =>
  String(value).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c);

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xml(code)}</Code><Message>${xml(message)}</Message></Error>`);
}

/** Bucket and key of a path-style request (`/{bucket}/{key}`), decoded. */
export function parsePath(url: string): { bucket: string; key: string; query: URLSearchParams } {
  const parsed = new URL(url, 'http://store');
  const [, bucket = '', ...rest] = parsed.pathname.split('/');
  return { bucket: decodeURIComponent(bucket), key: rest.map((s) => decodeURIComponent(s)).join('/'), query: parsed.searchParams };
}

const pageSize = (value: string | null): number => {
  const n = Number(value ?? MAX_PAGE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MAX_PAGE) : MAX_PAGE;
};

/** The folder of an upload of this key, or undefined when there is no such upload. */
async function uploadFolder(root: string, bucket: string, key: string, uploadId: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{32}$/.test(uploadId) || bucket.includes('/') || bucket.startsWith('.')) return undefined;
  const folder = path.join(root, bucket, UPLOADS_FOLDER, uploadId);
  try {
    return (await readFile(path.join(folder, 'key'), 'utf8')) === key ? folder : undefined;
  } catch {
    return undefined; // no `key` file: never initiated, or completed or aborted since
  }
}

async function listParts(res: ServerResponse, folder: string, bucket: string, key: string, uploadId: string, query: URLSearchParams): Promise<void> {
  const marker = Number(query.get('part-number-marker') ?? 0);
  const max = pageSize(query.get('max-parts'));
  const numbers = (await readdir(folder))
    .map((name) => /^(\d+)\.md5$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined && Number(n) > marker)
    .map(Number)
    .sort((a, b) => a - b);
  const page = numbers.slice(0, max);
  const parts = await Promise.all(
    page.map(async (n) => {
      const [where, info] = await Promise.all([partLocation(folder, n), stat(path.join(folder, `${n}.md5`)).catch(() => undefined)]);
      if (where === undefined || info === undefined) return ''; // sent again just now: listed once it is whole
      return `<Part><PartNumber>${n}</PartNumber><LastModified>${info.mtime.toISOString()}</LastModified><ETag>"${xml(where.etag)}"</ETag><Size>${where.size}</Size></Part>`;
    }),
  );
  const truncated = numbers.length > page.length;
  send(
    res,
    200,
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult xmlns="${S3_NS}"><Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><UploadId>${uploadId}</UploadId>` +
      `<PartNumberMarker>${marker}</PartNumberMarker><NextPartNumberMarker>${page.at(-1) ?? marker}</NextPartNumberMarker><MaxParts>${max}</MaxParts>` +
      `<IsTruncated>${truncated}</IsTruncated>${parts.join('')}</ListPartsResult>`,
  );
}

async function listUploads(res: ServerResponse, root: string, bucket: string, query: URLSearchParams): Promise<void> {
  const prefix = query.get('prefix') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const idMarker = query.get('upload-id-marker') ?? '';
  const max = pageSize(query.get('max-uploads'));
  const base = path.join(root, bucket, UPLOADS_FOLDER);
  const ids = await readdir(base).catch(() => [] as string[]);
  const uploads: { key: string; uploadId: string; initiated: Date }[] = [];
  for (const uploadId of ids) {
    try {
      const keyFile = path.join(base, uploadId, 'key');
      const [key, info] = await Promise.all([readFile(keyFile, 'utf8'), stat(keyFile)]);
      if (key.startsWith(prefix)) uploads.push({ key, uploadId, initiated: info.mtime });
    } catch {
      continue; // completed or aborted while listing
    }
  }
  uploads.sort((a, b) => (a.key === b.key ? a.uploadId.localeCompare(b.uploadId) : a.key < b.key ? -1 : 1));
  const after = uploads.filter((u) => u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.uploadId > idMarker));
  const page = after.slice(0, max);
  const last = page.at(-1);
  const truncated = after.length > page.length;
  send(
    res,
    200,
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="${S3_NS}"><Bucket>${xml(bucket)}</Bucket><KeyMarker>${xml(keyMarker)}</KeyMarker>` +
      `<UploadIdMarker>${xml(idMarker)}</UploadIdMarker><NextKeyMarker>${xml(last?.key ?? '')}</NextKeyMarker><NextUploadIdMarker>${last?.uploadId ?? ''}</NextUploadIdMarker>` +
      `<Prefix>${xml(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
      page.map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`).join('') +
      `</ListMultipartUploadsResult>`,
  );
}

/**
 * Wraps s3rver's request handler with the multipart operations it lacks, and makes part
 * uploads and completions of an unknown (aborted, completed) upload fail with
 * NoSuchUpload as on S3, instead of recreating the upload's folder.
 */
export function withMultipartOperations(next: RequestListener, root: string): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const { bucket, key, query } = parsePath(req.url ?? '/');
    const method = req.method ?? 'GET';
    const uploadId = query.get('uploadId');
    if (key === '' && method === 'GET' && query.has('uploads')) return listUploads(res, root, bucket, query);
    if (key !== '' && uploadId !== null) {
      const folder = await uploadFolder(root, bucket, key, uploadId);
      if (folder === undefined) {
        req.resume();
        return s3Error(res, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
      }
      if (method === 'GET') return listParts(res, folder, bucket, key, uploadId, query);
      if (method === 'POST') return completeUpload(req, res, root, folder, bucket, key);
      const partNumber = Number(query.get('partNumber'));
      if (method === 'PUT' && query.has('partNumber') && req.headers['x-amz-copy-source'] === undefined) {
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
          req.resume();
          return s3Error(res, 400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive.');
        }
        return uploadPart(req, res, folder, partNumber);
      }
      if (method === 'DELETE') {
        await rm(folder, { recursive: true, force: true });
        res.writeHead(204).end();
        return;
      }
    }
    if (isPlainPut(req, key, query)) return putObject(req, res, root, bucket, key);
    next(req, res);
  };
}
