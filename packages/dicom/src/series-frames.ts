/**
 * A series of single-frame instances (a modality that stores a run frame by frame) made into
 * the one multi-frame run Arteria takes: the first instance's header, with NumberOfFrames and
 * the frame rate set, in Explicit VR Little Endian, followed by Pixel Data holding every
 * instance's frame in order. Native pixels only: compressed frames would have to be decoded
 * or re-encapsulated, which the gateway never does.
 */
import dcmjs from 'dcmjs';
import { ArteriaError } from '@arteria/protocol';
import { parsePart10, PIXEL_DATA_TAG } from './part10.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, NATIVE_TRANSFER_SYNTAXES } from './transfer-syntax.js';
import type { DicomHeader } from './types.js';

/** What the assembly needs of one single-frame instance, read from its header. */
export interface SeriesFrame {
  header: DicomHeader;
  /** Instance Number (0020,0013), when given. */
  instanceNumber: number | undefined;
  /** Milliseconds of the day of Acquisition, else Content, Time (for order and frame rate), when given. */
  timeMs: number | undefined;
  /** Where its Pixel Data value starts in the file, and how many bytes of it are the frame. */
  pixelOffset: number;
  frameBytes: number;
}

/** Reads what the assembly needs from a single-frame instance's first bytes (its header, at least up to Pixel Data). */
export function seriesFrameOf(bytes: Uint8Array): SeriesFrame {
  const { dataSet, header } = parsePart10(bytes);
  const pixel = dataSet.elements[PIXEL_DATA_TAG];
  if (!NATIVE_TRANSFER_SYNTAXES.includes(header.transferSyntaxUid) || pixel === undefined || pixel.hadUndefinedLength === true) {
    throw new ArteriaError('UNSUPPORTED_DICOM', `instance ${header.sopInstanceUid} is not a native single frame`);
  }
  const frameBytes = (header.rows * header.columns * header.bitsAllocated) / 8;
  if (header.numberOfFrames !== 1 || pixel.length < frameBytes) throw new ArteriaError('UNSUPPORTED_DICOM', `instance ${header.sopInstanceUid} does not hold exactly one frame`);
  const number = dataSet.intString('x00200013');
  const time = timeOfDayMs(dataSet.string('x00080032') ?? dataSet.string('x00080033'));
  return { header, instanceNumber: Number.isFinite(number) ? number : undefined, timeMs: time, pixelOffset: pixel.dataOffset, frameBytes };
}

/**
 * The frames in acquisition order: by Instance Number when every frame has a distinct one,
 * else by acquisition time when every frame has a distinct one, else as given. Throws
 * UNSUPPORTED_DICOM unless every frame has the same geometry and sample format.
 */
export function orderSeriesFrames<T extends SeriesFrame>(frames: readonly T[]): T[] {
  const first = frames[0];
  if (first === undefined) throw new ArteriaError('UNSUPPORTED_DICOM', 'a series without instances');
  const shape = (h: DicomHeader): string => [h.rows, h.columns, h.bitsAllocated, h.bitsStored, h.samplesPerPixel, h.photometricInterpretation, h.pixelRepresentation].join(' ');
  const odd = frames.find((f) => shape(f.header) !== shape(first.header));
  if (odd !== undefined) throw new ArteriaError('UNSUPPORTED_DICOM', `instance ${odd.header.sopInstanceUid} is ${shape(odd.header)}, the series' first ${shape(first.header)} (rows, columns, bits, samples, photometric, sign)`);
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
 * first instance's whole file, `frame` what seriesFrameOf read of it) with NumberOfFrames
 * `frames`, Frame Time and its Frame Increment Pointer when `frameTimeMs` is known, in
 * Explicit VR Little Endian. Its SOP Instance UID stays the first instance's, so that results
 * refer to an image the PACS holds. The caller writes `frames` frames of `frame.frameBytes`
 * after it, and a zero byte when their length is odd.
 */
export function seriesRunHeader(first: Uint8Array, frame: SeriesFrame, frames: number, frameTimeMs: number | undefined): Buffer {
  const copy = new Uint8Array(first.byteLength);
  copy.set(first);
  const dict = dcmjs.data.DicomMessage.readFile(copy.buffer);
  const ds = dict.dict;
  // Pixel Data (and anything after it) is written by the caller; group lengths would be stale.
  for (const tag of Object.keys(ds)) if (tag >= '7FE00010' || tag.endsWith('0000')) delete ds[tag];
  ds['00280008'] = { vr: 'IS', Value: [frames] };
  if (frameTimeMs !== undefined) {
    ds['00181063'] = { vr: 'DS', Value: [Number(frameTimeMs.toFixed(3))] };
    ds['00280009'] = { vr: 'AT', Value: [0x00181063] };
  }
  dict.meta['00020010'] = { vr: 'UI', Value: [EXPLICIT_VR_LITTLE_ENDIAN] };
  const header = Buffer.from(dict.write());
  const length = frames * frame.frameBytes;
  const element = Buffer.alloc(12);
  element.writeUInt16LE(0x7fe0, 0);
  element.writeUInt16LE(0x0010, 2);
  element.write(frame.header.bitsAllocated > 8 ? 'OW' : 'OB', 4, 'latin1');
  element.writeUInt32LE(length + (length % 2), 8);
  return Buffer.concat([header, element]);
}

/** HHMMSS.FFFFFF as milliseconds of the day. */
function timeOfDayMs(value: string | undefined): number | undefined {
  const m = /^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?/.exec(value?.trim() ?? '');
  if (m === null) return undefined;
  return ((Number(m[1]) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000 + Number(m[4] ?? 0) * 1000;
}
