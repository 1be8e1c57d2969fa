import type { FileHandle } from 'node:fs/promises';
import type { BodyDigests } from './store-digests.js';

// How the embedded store writes a request's body (PutObject, UploadPart) to its file. A
// socket hands the body over in chunks of at most 64 KiB; writing each one on its own is a
// trip through libuv's file-system threads per chunk (6,400 for a 419 MB run), and each
// trip wakes one of those threads: on a virtual machine of two cores that cost the store
// about as much CPU as hashing the bytes. Here the chunks are gathered and written
// together with one writev of about BATCH_BYTES, while the next batch gathers (one write
// in flight at a time, so the order of the bytes on disk is never in question and memory
// stays at two batches per body). The chunks are the socket's own buffers: gathered by
// reference, not copied.

/** Bytes gathered before they are written with one writev. */
export const BATCH_BYTES = 1 << 20;
/** Buffers in one writev, at most (IOV_MAX is 1024 on Linux). */
const MAX_IOVECS = 512;

/** Writes `buffers` (their bytes in order) at `position`, going on after a short write. */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let rest = buffers;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
    at += bytesWritten;
    let skipped = bytesWritten;
    while (rest.length > 0 && skipped >= (rest[0]?.length ?? 0)) skipped -= rest.shift()?.length ?? 0;
    if (skipped > 0 && rest[0] !== undefined) rest = [rest[0].subarray(skipped), ...rest.slice(1)];
    if (bytesWritten === 0 && rest.length > 0) throw new Error(`a write at ${at} wrote nothing`);
  }
}

/**
 * Writes a request's body into `handle` from `position` on, each chunk added to `digests`
 * as it arrives; resolves with the body's size once every byte is written. A failed write
 * rejects (after the body stops being read).
 */
export async function writeBody(body: AsyncIterable<Buffer>, handle: FileHandle, position: number, digests: BodyDigests): Promise<number> {
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let size = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    await writing; // one write at a time: a failure of the last one stops the body here
    writing = writeAll(handle, batch, position + size);
    writing.catch(() => undefined); // awaited by the next flush or at the end; not unhandled meanwhile
    size += batchBytes;
    batch = [];
    batchBytes = 0;
  };
  for await (const chunk of body) {
    digests.update(chunk);
    batch.push(chunk);
    batchBytes += chunk.length;
    if (batchBytes >= BATCH_BYTES || batch.length >= MAX_IOVECS) await flush();
  }
  if (batchBytes > 0) await flush();
  await writing;
  return size;
}
