import { ArteriaError } from '@arteria/protocol';
import type { CodecFamily, FrameGeometry } from './pixel-codecs.js';

/** JPEG start-of-frame markers (SOF0-SOF15 but DHT, JPG, DAC) and JPEG-LS SOF55. */
const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf, 0xf7]);

/** Width, height and sample precision a JPEG or JPEG-LS frame declares in its SOF segment; undefined when none is found. */
function jpegSize(bytes: Uint8Array): { width: number; height: number; precision: number } | undefined {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] ?? 0;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    const length = ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0);
    if (SOF_MARKERS.has(marker)) {
      if (at + 9 > bytes.length) return undefined;
      const precision = bytes[at + 4] ?? 0;
      const height = ((bytes[at + 5] ?? 0) << 8) | (bytes[at + 6] ?? 0);
      const width = ((bytes[at + 7] ?? 0) << 8) | (bytes[at + 8] ?? 0);
      return { width, height, precision };
    }
    if (marker === 0xda) return undefined; // scan data before any SOF: not a valid frame
    at += 2 + length;
  }
  return undefined;
}

/** Width, height and first component's precision of a JPEG 2000 / HTJ2K codestream, from its SIZ segment (right after SOC). */
function j2kSize(bytes: Uint8Array): { width: number; height: number; precision: number } | undefined {
  if (bytes.length < 43 || bytes[0] !== 0xff || bytes[1] !== 0x4f || bytes[2] !== 0xff || bytes[3] !== 0x51) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const x = view.getUint32(8);
  const y = view.getUint32(12);
  const x0 = view.getUint32(16);
  const y0 = view.getUint32(20);
  // Ssiz: bit depth minus one, the top bit saying signed.
  return { width: x - x0, height: y - y0, precision: (view.getUint8(42) & 0x7f) + 1 };
}

/**
 * Refuses an encoded frame whose own header declares another size than the data set's Rows
 * and Columns, or wider samples than its BitsAllocated, before a codec allocates for it: a
 * codec sizes its output from the frame's header, so a 512 x 512 run holding a frame that
 * claims 65535 x 65535 would cost gigabytes, and 12-bit samples in a run of 8-bit ones
 * would come out twice as long and be cut to garbage.
 */
export function assertEncodedFrameSize(family: CodecFamily, encoded: Uint8Array, geometry: FrameGeometry, frame: number): void {
  const size = family === 'jpeg' || family === 'jpeg-ls' ? jpegSize(encoded) : family === 'rle' ? undefined : j2kSize(encoded);
  if (size === undefined) return; // RLE is sized by the data set; an unreadable header fails in the codec
  if (size.width !== geometry.columns || size.height !== geometry.rows) {
    throw new ArteriaError('INVALID_DICOM', `frame ${frame + 1} is encoded as ${size.width} x ${size.height}; Columns x Rows is ${geometry.columns} x ${geometry.rows}`);
  }
  if (size.precision > geometry.bitsAllocated) {
    throw new ArteriaError('INVALID_DICOM', `frame ${frame + 1} is encoded with ${size.precision}-bit samples; BitsAllocated is ${geometry.bitsAllocated}`);
  }
}
