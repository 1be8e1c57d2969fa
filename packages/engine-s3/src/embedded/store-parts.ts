import { constants } from 'node:fs';
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { bodyDigests } from './store-digests.js';

// UploadPart for the embedded store. Parts of one size S (every part but the last, as
// uploaders send them) are written straight into one file of the upload, part N at
// (N - 1) * S, so completing the upload renames that file into place instead of copying
// every byte again (store-complete.ts). S is the size of the first part that arrives; a
// part that does not fit its slot (larger than S, or of unknown length) goes to a file of
// its own, as s3rver keeps parts, and completion copies. Per part, `N.at` says where its
// bytes are; `N.md5`, written last, marks it complete (what ListParts lists) and holds its
// ETag: the SHA-256 of its bytes (store-digests.ts; s3rver's name for the file is kept).

/** The upload's own file that parts are written into, side by side. */
export const DATA_FILE = 'data';
const SLOT_FILE = 'slot';
/** Past this offset a part goes to its own file (file systems limit file sizes; sparse is not free everywhere). */
const MAX_SHARED_BYTES = 2 ** 40;

export interface PartLocation {
  file: string;
  offset: number;
  size: number;
}

/** Where part `n` of the upload in `folder` is, if it is complete. */
export async function partLocation(folder: string, n: number): Promise<(PartLocation & { etag: string }) | undefined> {
  const etag = await readFile(path.join(folder, `${n}.md5`), 'utf8').catch(() => undefined);
  if (etag === undefined) return undefined;
  const at = await readFile(path.join(folder, `${n}.at`), 'utf8').catch(() => undefined);
  if (at !== undefined) {
    const { offset, size } = JSON.parse(at) as { offset: number; size: number };
    return { file: path.join(folder, DATA_FILE), offset, size, etag: etag.trim() };
  }
  const info = await stat(path.join(folder, String(n))).catch(() => undefined);
  return info === undefined ? undefined : { file: path.join(folder, String(n)), offset: 0, size: info.size, etag: etag.trim() };
}

/**
 * The slot size of the upload in `folder`, fixed by the first part that asks: the file is
 * created exclusively, so of parts arriving together one sets it and the others read it.
 */
async function slotOf(folder: string, size: number): Promise<number> {
  const file = path.join(folder, SLOT_FILE);
  await writeFile(file, String(size), { flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return Number(await readFile(file, 'utf8'));
}

/** Answers UploadPart `n` of the upload in `folder` (known to exist). */
export async function uploadPart(req: IncomingMessage, res: ServerResponse, folder: string, n: number): Promise<void> {
  const length = Number(req.headers['content-length']);
  const known = Number.isSafeInteger(length) && length > 0;
  const slot = known ? await slotOf(folder, length) : 0;
  const shared = known && length <= slot && (n - 1) * slot + length <= MAX_SHARED_BYTES;
  const own = path.join(folder, String(n));
  const target = shared ? path.join(folder, DATA_FILE) : own;
  const offset = shared ? (n - 1) * slot : 0;
  // Not listed while its bytes change (a part sent again replaces the earlier one).
  await rm(path.join(folder, `${n}.md5`), { force: true });
  const digests = bodyDigests(req);
  let size = 0;
  // Positional writes into the shared file: never O_APPEND (Linux would ignore the positions) nor truncating.
  const handle = await open(target, shared ? constants.O_RDWR | constants.O_CREAT : 'w');
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      digests.update(chunk);
      for (let written = 0; written < chunk.length; ) written += (await handle.write(chunk, written, chunk.length - written, offset + size + written)).bytesWritten;
      size += chunk.length;
    }
  } finally {
    await handle.close();
  }
  const { etag, refusal } = digests.finish();
  // Not listed (no N.md5): a part sent again with the right bytes replaces it.
  if (refusal !== undefined) return answer(res, 400, refusal.code, refusal.message);
  if (shared) {
    await writeFile(path.join(folder, `${n}.at`), JSON.stringify({ offset, size }));
    await rm(own, { force: true });
  } else {
    await rm(path.join(folder, `${n}.at`), { force: true });
  }
  await writeFile(path.join(folder, `${n}.md5`), etag);
  res.writeHead(200, { etag: `"${etag}"`, ...(digests.checksumSha256 === undefined ? {} : { 'x-amz-checksum-sha256': digests.checksumSha256 }), 'content-length': 0 });
  res.end();
}

/** An S3 error answer (the request's body already read or not wanted). */
export function answer(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
