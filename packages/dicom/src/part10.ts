import dicomParser from 'dicom-parser';
import type { DataSet } from 'dicom-parser';
import { ArteriaError } from '@arteria/protocol';
import { DEFAULT_MAX_INFLATED_BYTES, boundedInflater } from './inflate.js';
import { parseDataSet } from './newer-vrs.js';
import { assertDecodableTransferSyntax } from './transfer-syntax.js';
import type { DicomHeader } from './types.js';

export const PIXEL_DATA_TAG = 'x7fe00010';
const PREAMBLE_BYTES = 128;

/** A parsed top-level data set (meta header merged in) and the header Arteria reads from it. */
export interface ParsedPart10 {
  dataSet: DataSet;
  header: DicomHeader;
}

/** Throws INVALID_DICOM unless the bytes start with the 128-byte preamble and "DICM". */
export function assertPart10Prefix(bytes: Uint8Array): void {
  const ok =
    bytes.length >= PREAMBLE_BYTES + 4 &&
    bytes[128] === 0x44 && // D
    bytes[129] === 0x49 && // I
    bytes[130] === 0x43 && // C
    bytes[131] === 0x4d; // M
  if (!ok) {
    throw new ArteriaError('INVALID_DICOM', 'not a DICOM Part 10 file: no 128-byte preamble followed by "DICM"');
  }
}

export interface ParsePart10Options {
  /** Most bytes a deflated data set may inflate to; beyond it INPUT_TOO_LARGE (default 16 MiB). */
  maxInflatedBytes?: number;
}

/**
 * Parses up to (not into) the top-level Pixel Data element, so a header chunk of a
 * multi-gigabyte run is enough and the pixel bytes are never walked.
 */
export function parsePart10(bytes: Uint8Array, options: ParsePart10Options = {}): ParsedPart10 {
  assertPart10Prefix(bytes);
  let dataSet: DataSet;
  try {
    dataSet = parseDataSet(bytes, { untilTag: PIXEL_DATA_TAG, inflater: boundedInflater(options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES) });
  } catch (err) {
    if (err instanceof ArteriaError) throw err;
    // A body Arteria cannot parse may be one in a syntax it does not read (deflated, big
    // endian): say so, naming the syntax, rather than calling the file broken.
    const syntax = metaTransferSyntax(bytes);
    if (syntax !== undefined) assertDecodableTransferSyntax(syntax);
    const reason = parserReason(err);
    throw new ArteriaError('INVALID_DICOM', `DICOM header cannot be parsed: ${reason}`, { cause: err });
  }
  try {
    return { dataSet, header: headerFrom(dataSet) };
  } catch (err) {
    // An element cut short by the end of the file is only found when its value is read.
    if (err instanceof ArteriaError) throw err;
    throw new ArteriaError('INVALID_DICOM', `DICOM header cannot be read: ${parserReason(err)}`, { cause: err });
  }
}

/** dicom-parser throws Errors, strings, and `{ exception, dataSet }` for a data set it read in part. */
export function parserReason(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'exception' in err) return parserReason(err.exception);
  return String(err);
}

function metaTransferSyntax(bytes: Uint8Array): string | undefined {
  try {
    return dicomParser.readPart10Header(bytes).string('x00020010')?.trim();
  } catch {
    // The meta header itself is broken: the caller reports the parse error instead.
    return undefined;
  }
}

function headerFrom(ds: DataSet): DicomHeader {
  const str = (tag: string): string => ds.string(tag)?.trim() ?? '';
  const essentials: [string, string | number | undefined][] = [
    ['TransferSyntaxUID (0002,0010)', ds.string('x00020010')],
    ['SOPClassUID (0008,0016)', ds.string('x00080016')],
    ['SOPInstanceUID (0008,0018)', ds.string('x00080018')],
    ['StudyInstanceUID (0020,000D)', ds.string('x0020000d')],
    ['SeriesInstanceUID (0020,000E)', ds.string('x0020000e')],
    ['Rows (0028,0010)', ds.uint16('x00280010')],
    ['Columns (0028,0011)', ds.uint16('x00280011')],
  ];
  const missing = essentials.filter(([, v]) => v === undefined || v === '' || v === 0).map(([name]) => name);
  if (missing.length > 0) {
    throw new ArteriaError('INVALID_DICOM', `DICOM header is missing ${missing.join(', ')}`);
  }
  return {
    transferSyntaxUid: str('x00020010'),
    sopClassUid: str('x00080016'),
    sopInstanceUid: str('x00080018'),
    studyInstanceUid: str('x0020000d'),
    seriesInstanceUid: str('x0020000e'),
    modality: str('x00080060'),
    rows: ds.uint16('x00280010') ?? 0,
    columns: ds.uint16('x00280011') ?? 0,
    numberOfFrames: ds.intString('x00280008') ?? 1,
    bitsAllocated: ds.uint16('x00280100') ?? 0,
    bitsStored: ds.uint16('x00280101') ?? ds.uint16('x00280100') ?? 0,
    pixelRepresentation: ds.uint16('x00280103') ?? 0,
    samplesPerPixel: ds.uint16('x00280002') ?? 1,
    photometricInterpretation: str('x00280004'),
    planarConfiguration: ds.uint16('x00280006') ?? 0,
    frameTimeMs: frameTimeMs(ds),
    windowCenter: finite(ds.floatString('x00281050')),
    windowWidth: finite(ds.floatString('x00281051')),
    hasPixelData: ds.elements[PIXEL_DATA_TAG] !== undefined,
    patientIdentityRemoved: str('x00120062').toUpperCase(),
    deidentificationMethod: str('x00120063') || (ds.elements.x00120064 === undefined ? '' : '(De-identification Method Code Sequence)'),
  };
}

/**
 * Frame Time, else the mean of Frame Time Vector, else 1000 / Cine Rate, else (enhanced
 * multi-frame objects, which need none of those) the mean interval between the frames'
 * acquisition times in the per-frame functional groups, else 1000 / Recommended Display
 * Frame Rate.
 */
function frameTimeMs(ds: DataSet): number | undefined {
  const frameTime = finite(ds.floatString('x00181063'));
  if (frameTime !== undefined && frameTime > 0) return frameTime;
  const vectorCount = ds.numStringValues('x00181065') ?? 0;
  if (vectorCount > 1) {
    // The first entry is 0 (time of the first frame); the rest are increments.
    let sum = 0;
    for (let i = 1; i < vectorCount; i++) sum += ds.floatString('x00181065', i) ?? Number.NaN;
    const mean = sum / (vectorCount - 1);
    if (Number.isFinite(mean) && mean > 0) return mean;
  }
  const cineRate = finite(ds.floatString('x00180040'));
  if (cineRate !== undefined && cineRate > 0) return 1000 / cineRate;
  const acquired = perFrameIntervalMs(ds);
  if (acquired !== undefined) return acquired;
  const displayRate = finite(ds.intString('x00082144'));
  if (displayRate !== undefined && displayRate > 0) return 1000 / displayRate;
  return undefined;
}

/**
 * Mean interval between Frame Acquisition DateTime (0018,9074) of the first and last frames,
 * from each Per-Frame Functional Groups item's Frame Content Sequence (0020,9111); undefined
 * unless every frame has one and they increase.
 */
function perFrameIntervalMs(ds: DataSet): number | undefined {
  const frames = ds.elements.x52009230?.items ?? [];
  if (frames.length < 2) return undefined;
  const times = frames.map((item) => dateTimeMs(item.dataSet?.elements.x00209111?.items?.[0]?.dataSet?.string('x00189074')));
  if (times.some((t, i) => t === undefined || (i > 0 && t <= times[i - 1]!))) return undefined;
  return (times[times.length - 1]! - times[0]!) / (times.length - 1);
}

/** A DT value (YYYYMMDDHHMMSS.FFFFFF, offset ignored) as milliseconds, for differences only. */
function dateTimeMs(value: string | undefined): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{1,6})?/.exec(value?.trim() ?? '');
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(year, month - 1, day, hour, minute, second) + Number(m[7] ?? 0) * 1000;
}

const finite = (n: number | undefined): number | undefined => (n !== undefined && Number.isFinite(n) ? n : undefined);
