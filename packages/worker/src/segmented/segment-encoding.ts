import { createBrotliDecompress } from 'node:zlib';
import { ArteriaError, MAX_SEGMENT_EXPANSION, type SegmentRef } from '@arteria/protocol';

/** zlib's output chunk: each is a trip to a libuv thread and back (its default, 16 KiB, halved the speed of a 16 MiB segment). */
const CHUNK_BYTES = 2 ** 20;

/**
 * A compressed segment's frames (SegmentRef.encoding), expanded on libuv's threads, off the
 * worker's event loop. Never more than `maxBytes` (the lesser of a segment's limit and
 * MAX_SEGMENT_EXPANSION times the stored size): a segment that expands past it (a
 * compression bomb, or frames no segment may hold) is refused SEGMENT_MISMATCH, as are
 * bytes that are not the encoding's. Expanded into `into` while they fit (a spare buffer
 * of the frames' expected size: memory already touched, not fresh); returns `into` itself
 * when they fill it exactly, else fresh memory. The frames' exact size is checked by the
 * fold, as for a segment stored as frames.
 */
export function expandSegment(object: SegmentRef, stored: Uint8Array, maxBytes: number, into?: Uint8Array): Promise<Uint8Array> {
  if (object.encoding !== 'br') return Promise.reject(new ArteriaError('SEGMENT_MISMATCH', `${object.uri}: unknown segment encoding ${String(object.encoding)}`));
  return new Promise((resolve, reject) => {
    const expander = createBrotliDecompress({ chunkSize: CHUNK_BYTES });
    /** Chunks once they no longer fit `into` (its part already filled first). */
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const refuse = (what: string): void => {
      if (settled) return;
      settled = true;
      expander.destroy();
      reject(new ArteriaError('SEGMENT_MISMATCH', `${object.uri}: the segment, stored Brotli-compressed, ${what}`));
    };
    expander.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (total + chunk.length > maxBytes) return refuse(`expands past ${maxBytes} bytes, more than a segment may hold or ${MAX_SEGMENT_EXPANSION} times its stored size`);
      if (into !== undefined && chunks.length === 0 && total + chunk.length <= into.length) into.set(chunk, total);
      else {
        if (into !== undefined && chunks.length === 0) chunks.push(Buffer.from(into.buffer, into.byteOffset, total));
        chunks.push(chunk);
      }
      total += chunk.length;
    });
    expander.on('error', (err) => refuse(`is not valid Brotli data (${err.message})`));
    expander.on('end', () => {
      if (settled) return;
      settled = true;
      if (into !== undefined && chunks.length === 0) resolve(total === into.length ? into : into.subarray(0, total));
      else resolve(Buffer.concat(chunks, total));
    });
    expander.end(stored);
  });
}
