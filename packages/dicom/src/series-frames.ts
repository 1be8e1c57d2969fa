/**
 * A series of single-frame instances (a modality that stores a run frame by frame) made into
 * the one multi-frame run Arteria takes: the first instance's header, with NumberOfFrames and
 * the frame rate set, followed by Pixel Data holding every instance's frame in order: native
 * samples one after the other (in Explicit VR Little Endian), or each compressed frame's
 * fragments as they came, behind a Basic Offset Table (in the instances' own syntax). Nothing
 * is decoded or re-encoded.
 */
import dcmjs from 'dcmjs';
import { ArteriaError } from '@arteria/protocol';
import { itemHeader, SEQUENCE_DELIMITER } from './items.js';
import { parseDataSet } from './newer-vrs.js';
import { parsePart10, parserReason, PIXEL_DATA_TAG } from './part10.js';
import { putSeriesInstances } from './series-instances.js';
import { DECODABLE_TRANSFER_SYNTAXES, EXPLICIT_VR_LITTLE_ENDIAN, NATIVE_TRANSFER_SYNTAXES } from './transfer-syntax.js';
import type { DicomHeader } from './types.js';

/** A run of bytes in an instance's file. */
export interface ByteSpan {
  offset: number;
  length: number;
}

/** What the assembly needs of one single-frame instance, read from its header. */
export interface SeriesFrame {
  header: DicomHeader;
  /** Instance Number (0020,0013), when given. */
  instanceNumber: number | undefined;
  /** Milliseconds of the day of Acquisition, else Content, Time (for order and frame rate), when given. */
  timeMs: number | undefined;
  /** Burned In Annotation (0028,0301) as the instance gives it (trimmed, upper case), '' when absent. */
  burnedInAnnotation?: string;
  /** Compressed: the frame's fragments, each a span; native: one span, the frame's samples. */
  encapsulated: boolean;
  spans: ByteSpan[];
}

/** Reads what the assembly needs from a single-frame instance's whole file. */
export function seriesFrameOf(bytes: Uint8Array): SeriesFrame {
  const { header } = parsePart10(bytes);
  const native = NATIVE_TRANSFER_SYNTAXES.includes(header.transferSyntaxUid);
  if (!DECODABLE_TRANSFER_SYNTAXES.includes(header.transferSyntaxUid)) throw new ArteriaError('UNSUPPORTED_TRANSFER_SYNTAX', `instance ${header.sopInstanceUid} is in transfer syntax ${header.transferSyntaxUid}`);
  let dataSet: ReturnType<typeof parseDataSet>;
  try {
    dataSet = parseDataSet(bytes);
  } catch (err) {
    throw new ArteriaError('INVALID_DICOM', `instance ${header.sopInstanceUid} cannot be parsed: ${parserReason(err)}`, { cause: err });
  }
  const pixel = dataSet.elements[PIXEL_DATA_TAG];
  const frameBytes = (header.rows * header.columns * header.samplesPerPixel * header.bitsAllocated) / 8;
  const fragments = pixel?.fragments ?? [];
  const one = header.numberOfFrames === 1 && pixel !== undefined && (native ? pixel.hadUndefinedLength !== true && pixel.length >= frameBytes : fragments.length > 0);
  if (!one) throw new ArteriaError('UNSUPPORTED_DICOM', `instance ${header.sopInstanceUid} does not hold exactly one frame`);
  const number = dataSet.intString('x00200013');
  const time = timeOfDayMs(dataSet.string('x00080032') ?? dataSet.string('x00080033'));
  const spans = native ? [{ offset: pixel.dataOffset, length: frameBytes }] : fragments.map((f) => ({ offset: f.position, length: f.length }));
  const burnedInAnnotation = (dataSet.string('x00280301') ?? '').replace(/\0/g, '').trim().toUpperCase();
  return { header, instanceNumber: Number.isFinite(number) ? number : undefined, timeMs: time, burnedInAnnotation, encapsulated: !native, spans };
}

/**
 * The frames in acquisition order: by Instance Number when every frame has a distinct one,
 * else by acquisition time when every frame has a distinct one, else as given. An instance
 * given twice (the same SOP Instance UID: a file copied or exported again) is one frame, the
 * first given. Throws UNSUPPORTED_DICOM unless every frame has the same geometry and sample
 * format.
 */
export function orderSeriesFrames<T extends SeriesFrame>(given: readonly T[]): T[] {
  const seen = new Set<string>();
  const frames = given.filter((f) => !seen.has(f.header.sopInstanceUid) && seen.add(f.header.sopInstanceUid));
  const first = frames[0];
  if (first === undefined) throw new ArteriaError('UNSUPPORTED_DICOM', 'a series without instances');
  // Native frames may mix implicit and explicit VR (the run is written explicit); compressed ones must share their syntax.
  const encoding = (h: DicomHeader): string => (NATIVE_TRANSFER_SYNTAXES.includes(h.transferSyntaxUid) ? 'native' : h.transferSyntaxUid);
  const shape = (h: DicomHeader): string => [h.rows, h.columns, h.bitsAllocated, h.bitsStored, h.samplesPerPixel, h.photometricInterpretation, h.pixelRepresentation, encoding(h)].join(' ');
  const odd = frames.find((f) => shape(f.header) !== shape(first.header));
  if (odd !== undefined) throw new ArteriaError('UNSUPPORTED_DICOM', `instance ${odd.header.sopInstanceUid} is ${shape(odd.header)}, the series' first ${shape(first.header)} (rows, columns, bits, samples, photometric, sign, pixel encoding)`);
  const distinct = (key: (f: T) => number | undefined): boolean => frames.every((f) => key(f) !== undefined) && new Set(frames.map(key)).size === frames.length;
  const by = (key: (f: T) => number | undefined): T[] => [...frames].sort((a, b) => key(a)! - key(b)!);
  if (distinct((f) => f.instanceNumber)) return by((f) => f.instanceNumber);
  if (distinct((f) => f.timeMs)) return by((f) => f.timeMs);
  return [...frames];
}

/** Mean interval between the ordered frames' acquisition times, when they increase. */
export function seriesFrameTimeMs(ordered: readonly SeriesFrame[]): number | undefined {
  const times = ordered.map((f) => f.timeMs);
  if (times.length < 2 || times.some((t, i) => t === undefined || (i > 0 && t <= times[i - 1]!))) return undefined;
  return (times[times.length - 1]! - times[0]!) / (times.length - 1);
}

/**
 * The multi-frame file's bytes up to and including Pixel Data's element header: `first` (the
 * first instance's whole file; `ordered`, what seriesFrameOf read of every instance, in frame
 * order) with NumberOfFrames, the list of the instances (putSeriesInstances), Frame Time and its Frame Increment Pointer when `frameTimeMs` is known; native
 * runs in Explicit VR Little Endian, compressed ones in their own syntax. Its SOP Instance UID
 * stays the first instance's, so that results refer to an image the PACS holds. The caller
 * then writes the frames: native, `frames` times the frame's samples (and a zero byte when
 * their length is odd); compressed, seriesFragmentItems' bytes.
 */
export function seriesRunHeader(first: Uint8Array, ordered: readonly SeriesFrame[], frameTimeMs: number | undefined): Buffer {
  const frame = ordered[0];
  if (frame === undefined) throw new ArteriaError('UNSUPPORTED_DICOM', 'a series without instances');
  const frames = ordered.length;
  const copy = new Uint8Array(first.byteLength);
  copy.set(first);
  const dict = dcmjs.data.DicomMessage.readFile(copy.buffer);
  const ds = dict.dict;
  // Pixel Data (and anything after it) is written by the caller; group lengths would be stale.
  for (const tag of Object.keys(ds)) if (tag >= '7FE00001' || tag.endsWith('0000')) delete ds[tag];
  ds['00280008'] = { vr: 'IS', Value: [frames] };
  // The run says NO to burned-in annotation only when every frame does; YES when any does; else
  // nothing (unknown), so that de-identification weighs every frame, not the first alone.
  const said = ordered.map((f) => f.burnedInAnnotation ?? '');
  if (said.includes('YES')) ds['00280301'] = { vr: 'CS', Value: ['YES'] };
  else if (!said.every((v) => v === 'NO')) delete ds['00280301'];
  // Every instance the run is made of, so that a result refers back to all of them (series-instances.ts).
  putSeriesInstances(ds, ordered.map((f) => ({ sopClassUid: f.header.sopClassUid, sopInstanceUid: f.header.sopInstanceUid })));
  if (frameTimeMs !== undefined) {
    ds['00181063'] = { vr: 'DS', Value: [Number(frameTimeMs.toFixed(3))] };
    ds['00280009'] = { vr: 'AT', Value: [0x00181063] };
  }
  if (!frame.encapsulated) dict.meta['00020010'] = { vr: 'UI', Value: [EXPLICIT_VR_LITTLE_ENDIAN] };
  const header = Buffer.from(dict.write());
  const length = frames * (frame.spans[0]?.length ?? 0);
  const element = Buffer.alloc(12);
  element.writeUInt16LE(0x7fe0, 0);
  element.writeUInt16LE(0x0010, 2);
  element.write(frame.header.bitsAllocated > 8 && !frame.encapsulated ? 'OW' : 'OB', 4, 'latin1');
  element.writeUInt32LE(frame.encapsulated ? 0xffffffff : length + (length % 2), 8);
  return Buffer.concat([header, element]);
}

/**
 * Encapsulated Pixel Data's value for compressed frames, in order: a Basic Offset Table, then
 * `item(span)` for each fragment (the caller supplies each fragment's bytes), then the
 * sequence delimiter. Returned as the table and the item headers, so the fragments can be
 * copied from their files without holding them.
 */
export function seriesFragmentItems(ordered: readonly SeriesFrame[]): { table: Buffer; itemHeader: (length: number) => Buffer; delimiter: Buffer } {
  const offsets: number[] = [];
  let at = 0;
  for (const f of ordered) {
    offsets.push(at);
    for (const span of f.spans) at += 8 + span.length + (span.length % 2);
  }
  const values = Buffer.alloc(offsets.length * 4);
  offsets.forEach((o, i) => values.writeUInt32LE(o, i * 4));
  return { table: Buffer.concat([itemHeader(values.length), values]), itemHeader, delimiter: SEQUENCE_DELIMITER };
}

/** HHMMSS.FFFFFF as milliseconds of the day. */
function timeOfDayMs(value: string | undefined): number | undefined {
  const m = /^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?/.exec(value?.trim() ?? '');
  if (m === null) return undefined;
  return ((Number(m[1]) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000 + Number(m[4] ?? 0) * 1000;
}
