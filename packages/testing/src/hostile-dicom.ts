/**
 * Hostile DICOM Part 10 files, built byte by byte so each can break exactly one rule:
 * a deflate bomb, absurd declared lengths and geometry, truncated pixels, deep nesting.
 * Explicit VR Little Endian throughout, except where a file says otherwise.
 */
import { constants, createDeflateRaw } from 'node:zlib';

const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const DEFLATED = '1.2.840.10008.1.2.1.99';
const XA = '1.2.840.10008.5.1.4.1.1.12.1';
const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);
const UNDEFINED = 0xffffffff;

function even(value: Buffer, pad: number): Buffer {
  return value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.from([pad])]);
}

/** One explicit-VR little-endian element; `length` overrides the value's own length. */
export function element(tag: number, vr: string, value: Buffer | string, length?: number): Buffer {
  const bytes = typeof value === 'string' ? even(Buffer.from(value, 'latin1'), vr === 'UI' ? 0 : 0x20) : value;
  const head = Buffer.alloc(LONG_VRS.has(vr) ? 12 : 8);
  head.writeUInt16LE(tag >>> 16, 0);
  head.writeUInt16LE(tag & 0xffff, 2);
  head.write(vr, 4, 'latin1');
  if (LONG_VRS.has(vr)) head.writeUInt32LE(length ?? bytes.length, 8);
  else head.writeUInt16LE(length ?? bytes.length, 6);
  return Buffer.concat([head, bytes]);
}

const us = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

/** Preamble, "DICM" and the meta group for `syntax`, then the body as given. */
export function part10(body: Buffer, syntax = EXPLICIT_VR_LITTLE_ENDIAN, sopInstanceUid = '1.2.826.0.1.3680043.10.1.1'): Buffer {
  const meta = Buffer.concat([
    element(0x00020001, 'OB', Buffer.from([0, 1])),
    element(0x00020002, 'UI', XA),
    element(0x00020003, 'UI', sopInstanceUid),
    element(0x00020010, 'UI', syntax),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(meta.length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), element(0x00020000, 'UL', length), meta, body]);
}

export interface Geometry {
  rows: number;
  columns: number;
  frames: number;
}

/** A grayscale XA header (everything before Pixel Data) with synthetic PHI. */
export function imageHeader(g: Geometry, sopInstanceUid = '1.2.826.0.1.3680043.10.1.1'): Buffer {
  return Buffer.concat([
    element(0x00080016, 'UI', XA),
    element(0x00080018, 'UI', sopInstanceUid),
    element(0x00080060, 'CS', 'XA'),
    element(0x00100010, 'PN', 'HOSTILE^PATIENT'),
    element(0x00100020, 'LO', 'HOSTILE-ID-1'),
    element(0x0020000d, 'UI', '1.2.826.0.1.3680043.10.1.2'),
    element(0x0020000e, 'UI', '1.2.826.0.1.3680043.10.1.3'),
    element(0x00280002, 'US', us(1)),
    element(0x00280004, 'CS', 'MONOCHROME2'),
    element(0x00280008, 'IS', String(g.frames)),
    element(0x00280010, 'US', us(g.rows)),
    element(0x00280011, 'US', us(g.columns)),
    element(0x00280100, 'US', us(8)),
    element(0x00280101, 'US', us(8)),
    element(0x00280102, 'US', us(7)),
    element(0x00280103, 'US', us(0)),
  ]);
}

/** A native run whose Pixel Data declares `declaredBytes` and holds `presentBytes` (default: all). */
export function nativeRun(g: Geometry, declaredBytes = g.rows * g.columns * g.frames, presentBytes = declaredBytes): Buffer {
  return part10(Buffer.concat([imageHeader(g), element(0x7fe00010, 'OB', Buffer.alloc(presentBytes), declaredBytes)]));
}

/**
 * A deflated run of about inflatedBytes / 1000 bytes whose body inflates to `inflatedBytes`
 * (Pixel Data full of zeros): a deflate bomb. Built in pieces, never held inflated.
 */
export async function deflateBomb(inflatedBytes: number): Promise<Buffer> {
  const chunk = 1 << 20;
  const chunks = Math.max(2, Math.ceil(inflatedBytes / chunk));
  const g = { rows: 1024, columns: 1024, frames: chunks };
  const z = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const flushed = async (): Promise<Buffer> => {
    await new Promise<void>((resolve) => z.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    return Buffer.concat(out.splice(0));
  };
  const zeros = Buffer.alloc(chunk);
  z.write(Buffer.concat([imageHeader(g), element(0x7fe00010, 'OB', Buffer.alloc(0), Math.min(chunks * chunk, 0xfffffffe))]));
  z.write(zeros);
  const first = await flushed();
  // With a window full of zeros, every further MiB of zeros deflates to the same bytes.
  z.write(zeros);
  const repeat = await flushed();
  z.write(zeros);
  if (!(await flushed()).equals(repeat)) throw new Error('zlib did not repeat itself; cannot build the bomb cheaply');
  const end = new Promise<Buffer>((resolve) => z.on('end', () => resolve(Buffer.concat(out.splice(0)))));
  z.end();
  const last = await end;
  return part10(Buffer.concat([first, ...Array.from({ length: chunks - 3 }, () => repeat), repeat, repeat, last]), DEFLATED);
}

/** Sequences nested `depth` deep (undefined lengths), then a small valid image. */
export function nestedSequences(depth: number): Buffer {
  const open = Buffer.concat([element(0x00400275, 'SQ', Buffer.alloc(0), UNDEFINED), itemStart()]);
  const close = Buffer.concat([itemEnd(), sequenceEnd()]);
  const g = { rows: 8, columns: 8, frames: 2 };
  const nested = Buffer.concat([...Array.from({ length: depth }, () => open), ...Array.from({ length: depth }, () => close)]);
  return part10(Buffer.concat([imageHeader(g), nested, element(0x7fe00010, 'OB', Buffer.alloc(128))]));
}

function itemStart(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(0xe000, 2);
  b.writeUInt32LE(UNDEFINED, 4);
  return b;
}
function itemEnd(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(0xe00d, 2);
  return b;
}
function sequenceEnd(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(0xe0dd, 2);
  return b;
}
