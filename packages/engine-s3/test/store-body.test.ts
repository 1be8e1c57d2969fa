// The embedded store's body writer: a request's chunks gathered into writev batches land
// byte for byte at their place in the file, whatever the chunk sizes, a short write goes
// on where it stopped, and a failed write rejects the body (never an unhandled rejection).
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BATCH_BYTES, writeBody } from '../src/embedded/store-body.js';
import { bodyDigests } from '../src/embedded/store-digests.js';
import type { IncomingMessage } from 'node:http';

const noHeaders = { headers: {} } as IncomingMessage;

/** The bytes cut into chunks of 1 byte to 64 KiB, as a socket might hand them over. */
function chunksOf(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = [1, 65_536, 7, 40_000, 65_536, 65_536, 3][i % 7] ?? 1;
    chunks.push(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
  }
  return chunks;
}

async function* stream(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const chunk of chunks) {
    await Promise.resolve();
    yield chunk;
  }
}

describe('embedded object store: body writer', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('writes every chunk in order at the position given, over several batches, and hashes the body', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'arteria-store-body-'));
    dirs.push(dir);
    const bytes = randomFillSync(Buffer.alloc(3 * BATCH_BYTES + 12_345));
    const file = path.join(dir, 'object');
    const handle = await open(file, 'w');
    const digests = bodyDigests(noHeaders);
    let size: number;
    try {
      size = await writeBody(stream(chunksOf(bytes)), handle, 100, digests);
    } finally {
      await handle.close();
    }
    expect(size).toBe(bytes.length);
    const written = await readFile(file);
    expect(written.length).toBe(100 + bytes.length);
    expect(written.subarray(100).equals(bytes)).toBe(true);
    expect(digests.finish().etag).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('goes on after short writes, from the byte where each stopped', async () => {
    const bytes = randomFillSync(Buffer.alloc(BATCH_BYTES + 5000));
    const file = Buffer.alloc(bytes.length);
    let calls = 0;
    // A file that takes at most 3000 bytes a call, cutting buffers in the middle.
    const handle = {
      writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number; buffers: Buffer[] }> {
        calls += 1;
        const all = Buffer.concat(buffers);
        const n = Math.min(3000, all.length);
        all.copy(file, position, 0, n);
        return Promise.resolve({ bytesWritten: n, buffers });
      },
    } as unknown as FileHandle;
    expect(await writeBody(stream(chunksOf(bytes)), handle, 0, bodyDigests(noHeaders))).toBe(bytes.length);
    expect(file.equals(bytes)).toBe(true);
    expect(calls).toBeGreaterThan(bytes.length / 3000);
  });

  it('rejects with the write failure and stops reading the body', async () => {
    const failure = new Error('EIO: the disk failed');
    const handle = { writev: () => Promise.reject(failure) } as unknown as FileHandle;
    let read = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for (const chunk of chunksOf(randomFillSync(Buffer.alloc(8 * BATCH_BYTES)))) {
        read += chunk.length;
        await Promise.resolve();
        yield chunk;
      }
    }
    await expect(writeBody(counted(), handle, 0, bodyDigests(noHeaders))).rejects.toBe(failure);
    // The first batch's failure is seen when the second is ready: at most about two batches read.
    expect(read).toBeLessThan(3 * BATCH_BYTES);
  });
});
