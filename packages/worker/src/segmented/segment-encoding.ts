import { brotliDecompress } from 'node:zlib';
import { ArteriaError, type SegmentRef } from '@arteria/protocol';

/**
 * A compressed segment's frames (SegmentRef.encoding), expanded on libuv's threads, off the
 * worker's event loop. Never more than `maxBytes`: a segment that expands past it (a
 * compression bomb, or frames no segment may hold) is refused SEGMENT_MISMATCH, as are
 * bytes that are not the encoding's. The frames' exact size is checked by the fold, as for
 * a segment stored as frames.
 */
/** zlib's output chunk: each is a trip to a libuv thread and back (its default, 16 KiB, halved the speed of a 16 MiB segment). */
const CHUNK_BYTES = 2 ** 20;

export async function expandSegment(object: SegmentRef, stored: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  if (object.encoding !== 'br') throw new ArteriaError('SEGMENT_MISMATCH', `${object.uri}: unknown segment encoding ${String(object.encoding)}`);
  return new Promise((resolve, reject) => {
    brotliDecompress(stored, { maxOutputLength: maxBytes, chunkSize: CHUNK_BYTES }, (err, frames) => {
      if (err === null) return resolve(frames);
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      const what = tooLarge ? `expands past ${maxBytes} bytes, more than a segment may hold` : `is not valid Brotli data (${err.message})`;
      reject(new ArteriaError('SEGMENT_MISMATCH', `${object.uri}: the segment, stored Brotli-compressed, ${what}`));
    });
  });
}
