import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import FilesystemStore from 's3rver/lib/stores/filesystem.js';
import { ArteriaError, type InputRef } from '@arteria/protocol';
import { parseS3Uri } from '../storage/s3.js';
import { type FetchOptions, type InputSource, assertAcceptedSize, assertDeclaredDigest, endedEarly, sizeMismatch } from '@arteria/ports';

/** Read size: large enough that the file reads cost little, small enough that hashing one never holds the event loop for long. */
const CHUNK_BYTES = 1 << 20;
/**
 * Inputs up to this size are read in one synchronous step: four round trips through the
 * file-system threads (open, stat, read, close) cost a small input more than the read, each
 * waiting for a turn of a busy event loop; a read this small blocks it for microseconds.
 */
const READ_AT_ONCE_BYTES = 64 << 10;

/**
 * Inputs read straight from the embedded object store's files, for workers in the same
 * process as the store. The bytes are the ones the store serves over its S3 API (the
 * store's own code maps a key to its file), checked the same way: declared size as they
 * are read, SHA-256 at the end. It skips the HTTP round trip through the store's thread,
 * which otherwise costs more CPU than hashing the run.
 */
export class LocalStoreInputSource implements InputSource {
  readonly #store: FilesystemStore;
  readonly #root: string;

  constructor(directory: string) {
    this.#root = path.resolve(directory);
    this.#store = new FilesystemStore(this.#root);
  }

  async fetch(input: InputRef, options: FetchOptions): Promise<Buffer> {
    assertAcceptedSize(input, options.maxBytes);
    if (input.size <= READ_AT_ONCE_BYTES) {
      options.signal?.throwIfAborted();
      return this.#readAtOnce(input);
    }
    const handle = await this.#open(input);
    try {
      const { size } = await handle.stat();
      if (size !== input.size) throw sizeMismatch(input, size);
      // Memory the caller gives (already touched, see FetchOptions.into) costs no page faults, where a fresh 16 MiB costs about 35 ms of CPU.
      const { into } = options;
      const data = into?.byteLength === size ? Buffer.from(into.buffer, into.byteOffset, size) : Buffer.allocUnsafe(size);
      const hash = createHash('sha256');
      let offset = 0;
      while (offset < size) {
        options.signal?.throwIfAborted();
        const { bytesRead } = await handle.read(data, offset, Math.min(CHUNK_BYTES, size - offset), offset);
        if (bytesRead === 0) throw endedEarly(input, offset);
        hash.update(data.subarray(offset, offset + bytesRead));
        offset += bytesRead;
      }
      assertDeclaredDigest(input, hash.digest('hex'));
      return data;
    } catch (err) {
      if (err instanceof ArteriaError || options.signal?.aborted === true) throw err;
      throw new ArteriaError('STORAGE_UNAVAILABLE', `reading ${input.uri} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      await handle.close();
    }
  }

  /**
   * The object in chunks as they are read, each in memory of its own; see InputSource.
   * The last chunk is held back until the SHA-256 is verified.
   */
  async *stream(input: InputRef, options: FetchOptions): AsyncGenerator<Buffer> {
    assertAcceptedSize(input, options.maxBytes);
    if (input.size <= READ_AT_ONCE_BYTES) {
      options.signal?.throwIfAborted();
      yield this.#readAtOnce(input);
      return;
    }
    const handle = await this.#open(input);
    try {
      const { size } = await handle.stat();
      if (size !== input.size) throw sizeMismatch(input, size);
      const hash = createHash('sha256');
      let offset = 0;
      let held: Buffer | undefined;
      while (offset < size) {
        options.signal?.throwIfAborted();
        const chunk = Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, size - offset));
        const { bytesRead } = await readChunk(handle, chunk, offset, input.uri);
        if (bytesRead === 0) throw endedEarly(input, offset);
        const read = bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead);
        hash.update(read);
        offset += bytesRead;
        if (held !== undefined) yield held;
        held = read;
      }
      assertDeclaredDigest(input, hash.digest('hex'));
      if (held !== undefined) yield held;
    } catch (err) {
      if (err instanceof ArteriaError || options.signal?.aborted === true) throw err;
      throw new ArteriaError('STORAGE_UNAVAILABLE', `reading ${input.uri} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      await handle.close();
    }
  }

  /** A small input read and checked in one synchronous step (see READ_AT_ONCE_BYTES). */
  #readAtOnce(input: InputRef): Buffer {
    const file = this.#objectPath(input.uri);
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      throw openError(input, err);
    }
    try {
      const { size } = fstatSync(fd);
      if (size !== input.size) throw sizeMismatch(input, size);
      const data = Buffer.allocUnsafe(size);
      for (let offset = 0; offset < size; ) {
        const bytesRead = readSync(fd, data, offset, size - offset, offset);
        if (bytesRead === 0) throw endedEarly(input, offset);
        offset += bytesRead;
      }
      assertDeclaredDigest(input, createHash('sha256').update(data).digest('hex'));
      return data;
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      throw new ArteriaError('STORAGE_UNAVAILABLE', `reading ${input.uri} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      closeSync(fd);
    }
  }

  async #open(input: InputRef): Promise<FileHandle> {
    const file = this.#objectPath(input.uri);
    try {
      return await open(file, 'r');
    } catch (err) {
      throw openError(input, err);
    }
  }

  /**
   * The object's file. Keys with empty, `.` or `..` segments cannot be stored as files
   * under their own name (the file system would fold them), so they do not exist here;
   * this also keeps every read inside its bucket's folder.
   */
  #objectPath(uri: string): string {
    const { bucket, key } = parseS3Uri(uri);
    const folded = [bucket, ...key.split('/')].some((part) => part === '' || part === '.' || part === '..');
    const file = this.#store.getResourcePath(bucket, key, 'object');
    if (folded || !file.startsWith(path.join(this.#root, bucket) + path.sep)) {
      throw new ArteriaError('INPUT_NOT_FOUND', `input ${uri} does not exist`);
    }
    return file;
  }
}

/** One read, a failure of which is the store's (STORAGE_UNAVAILABLE), not the input's. */
async function readChunk(handle: FileHandle, chunk: Buffer, position: number, uri: string): Promise<{ bytesRead: number }> {
  try {
    return await handle.read(chunk, 0, chunk.length, position);
  } catch (err) {
    throw new ArteriaError('STORAGE_UNAVAILABLE', `reading ${uri} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** A file that cannot be opened: missing (INPUT_NOT_FOUND) or the store's failure (STORAGE_UNAVAILABLE). */
function openError(input: InputRef, err: unknown): ArteriaError {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new ArteriaError('INPUT_NOT_FOUND', `input ${input.uri} does not exist`, { cause: err });
  return new ArteriaError('STORAGE_UNAVAILABLE', `opening ${input.uri} failed: ${(err as Error).message}`, { cause: err });
}
