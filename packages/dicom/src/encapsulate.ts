import { itemHeader, SEQUENCE_DELIMITER } from './items.js';

/** How encapsulateFrames lays the frames out. */
export interface EncapsulateOptions {
  /** Split each frame into fragments of at most this many bytes (default: one fragment a frame). */
  fragmentBytes?: number;
  /** The Basic Offset Table: empty (default), filled, or empty with an Extended Offset Table (7FE0,0001-0002) before Pixel Data. */
  offsets?: 'empty' | 'basic' | 'extended';
}

/**
 * An encapsulated copy of a native explicit-VR little-endian Part 10 file: the meta header
 * names `syntax`, the data set is kept up to Pixel Data, which becomes an offset table and
 * fragments holding `frames[i]` (one each unless `fragmentBytes` splits them), each compressed
 * elsewhere (a JPEG 2000 codestream, say). For tests and benchmarks that need runs in a
 * compressed transfer syntax, or a fragment layout, that no installed tool writes.
 */
export function encapsulateFrames(bytes: Uint8Array, syntax: string, frames: readonly Uint8Array[], options: EncapsulateOptions = {}): Buffer {
  const native = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const metaStart = 132;
  const metaEnd = metaStart + 12 + native.readUInt32LE(metaStart + 8);
  const elements: Buffer[] = [];
  for (let at = metaStart + 12; at < metaEnd; ) {
    const element = native.readUInt16LE(at + 2);
    const vr = native.toString('latin1', at + 4, at + 6);
    const long = ['OB', 'OW', 'UN', 'SQ', 'UT', 'UC', 'UR'].includes(vr);
    const length = long ? native.readUInt32LE(at + 8) : native.readUInt16LE(at + 6);
    const size = (long ? 12 : 8) + length;
    if (element === 0x0010) {
      const uid = Buffer.from(syntax.length % 2 === 0 ? syntax : `${syntax}\0`, 'latin1');
      const head = Buffer.alloc(8);
      head.writeUInt16LE(0x0002, 0);
      head.writeUInt16LE(0x0010, 2);
      head.write('UI', 4, 'latin1');
      head.writeUInt16LE(uid.length, 6);
      elements.push(head, uid);
    } else {
      elements.push(native.subarray(at, at + size));
    }
    at += size;
  }
  const meta = Buffer.concat(elements);
  const groupLength = Buffer.from(native.subarray(metaStart, metaStart + 12));
  groupLength.writeUInt32LE(meta.length, 8);
  const pixelTag = native.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  const item = (data: Uint8Array): Buffer => Buffer.concat([itemHeader(data.length), Buffer.from(data), Buffer.alloc(data.length % 2)]);
  const pixelHead = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const step = options.fragmentBytes ?? Infinity;
  const fragmentsOf = (frame: Uint8Array): Buffer[] => {
    const out: Buffer[] = [];
    for (let at = 0; at < frame.length || out.length === 0; at += step) out.push(item(frame.subarray(at, Math.min(frame.length, at + step))));
    return out;
  };
  const perFrame = frames.map(fragmentsOf);
  // Each frame's offset: from the first fragment's item tag, as both tables count.
  const offsets: number[] = [];
  perFrame.reduce((at, fragments) => (offsets.push(at), at + fragments.reduce((n, f) => n + f.length, 0)), 0);
  const lengths = frames.map((frame) => frame.length);
  const table = options.offsets === 'basic' ? Buffer.concat(offsets.map((o) => u32(o))) : Buffer.alloc(0);
  const extended = options.offsets === 'extended' ? Buffer.concat([ov(0x0001, offsets), ov(0x0002, lengths)]) : Buffer.alloc(0);
  return Buffer.concat([native.subarray(0, metaStart), groupLength, meta, native.subarray(metaEnd, pixelTag), extended, pixelHead, item(table), ...perFrame.flat(), SEQUENCE_DELIMITER]);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return b;
}

/** An explicit-VR OV element of group 7FE0 holding 64-bit values. */
function ov(element: number, values: readonly number[]): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16LE(0x7fe0, 0);
  head.writeUInt16LE(element, 2);
  head.write('OV', 4, 'latin1');
  head.writeUInt32LE(values.length * 8, 8);
  const body = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => body.writeBigUInt64LE(BigInt(v), i * 8));
  return Buffer.concat([head, body]);
}
