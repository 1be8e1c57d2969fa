import { brotliCompress, constants } from 'node:zlib';
import { MAX_SEGMENT_EXPANSION, type SegmentEncoding, type SegmentEncodingSetting } from '@arteria/protocol';

/**
 * Brotli quality 1: on X-ray frames it compresses at 100-200 MB/s per core, near what a
 * 1 Gb/s link carries, for 1.2-1.9x (docs/performance.md); higher qualities gain a few
 * percent at a fraction of the speed. Fixed parameters: the same frames give the same bytes
 * again after a restart (the segment's SHA-256 was recorded when it was cut).
 */
const BROTLI_QUALITY = 1;
/**
 * zlib's output chunk: each chunk is a trip to a libuv thread and back, so its default
 * (16 KiB) made a 16 MiB segment about a thousand trips, and halved the speed.
 */
const CHUNK_BYTES = 2 ** 20;

/** A segment's frames as `encoding` stores them, compressed on libuv's threads, off the event loop. */
export function encodedAs(frames: Buffer, encoding: SegmentEncoding): Promise<Buffer> {
  const params = { [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: frames.length };
  switch (encoding) {
    case 'br':
      return new Promise((resolve, reject) => brotliCompress(frames, { params, chunkSize: CHUNK_BYTES }, (err, bytes) => (err === null ? resolve(bytes) : reject(err))));
  }
}

/**
 * `auto` compresses while the uplink carries less than this (about 320 Mb/s): a link that
 * slow leaves compression (about 200 MB/s per core) far ahead of it, and on one 2-core
 * machine compressed segments were answered 13-21 % sooner at 100 and 300 Mb/s, and 1.5x
 * later at 1 Gb/s (docs/performance.md).
 */
export const AUTO_COMPRESS_BELOW_BYTES_PER_SECOND = 40e6;

/**
 * The encoding the next segment is cut with: the setting itself, or for `auto` Brotli
 * while the link is known to be slow (the bandwidth cap, else what the link meter measured
 * lately) and nothing while it is fast or not yet measured.
 */
export function chosenEncoding(setting: SegmentEncodingSetting, link: { capBytesPerSecond: number | undefined; measuredBytesPerSecond: () => number | undefined }): 'none' | SegmentEncoding {
  if (setting !== 'auto') return setting;
  const rate = Math.min(link.capBytesPerSecond ?? Infinity, link.measuredBytesPerSecond() ?? Infinity);
  return rate < AUTO_COMPRESS_BELOW_BYTES_PER_SECOND ? 'br' : 'none';
}

/**
 * What goes up for a segment's frames under the gateway's `segmentEncoding`: compressed when
 * that makes it smaller, else the frames themselves (noise-heavy frames may not shrink); and
 * as they are when they compress more than the platform expands (MAX_SEGMENT_EXPANSION:
 * dark or blank frames), which costs little, being few.
 */
export async function encodeSegment(frames: Buffer, setting: 'none' | SegmentEncoding): Promise<{ bytes: Buffer; encoding: SegmentEncoding | undefined }> {
  if (setting === 'none') return { bytes: frames, encoding: undefined };
  const bytes = await encodedAs(frames, setting);
  const worth = bytes.length < frames.length && frames.length <= MAX_SEGMENT_EXPANSION * bytes.length;
  return worth ? { bytes, encoding: setting } : { bytes: frames, encoding: undefined };
}
