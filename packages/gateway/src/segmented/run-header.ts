import { open } from 'node:fs/promises';
import dicomParser from 'dicom-parser';
import { mayHaveBurnedInAnnotation } from '@arteria/deid';
import { ArteriaError } from '@arteria/protocol';
import {
  ENCAPSULATED_TRANSFER_SYNTAXES,
  IMPLICIT_VR_LITTLE_ENDIAN,
  PIXEL_DATA_TAG,
  assertMultiFrameRun,
  parseDataSet,
  readSegmentedHeader,
  type SegmentedRunHeader,
} from '@arteria/dicom';

/** The header of a run whose pixels may still be arriving, and where they go. */
export interface GrowingRunHeader {
  /** The Part 10 bytes up to the value of Pixel Data (the segmented run's header object, before de-identification). */
  bytes: Buffer;
  /** Offset of Pixel Data's tag: what lies before it is what de-identification rewrites. */
  tagOffset: number;
  /** Offset of Pixel Data's value: frame 0 starts here. */
  valueOffset: number;
  /** Pixel Data's length: the file is complete when this many bytes follow valueOffset. */
  pixelLength: number;
  run: SegmentedRunHeader;
  frameBytes: number;
  /** The pixels may carry burned-in annotation (mayHaveBurnedInAnnotation): masking them needs the whole run. */
  burnedIn: boolean;
}

/**
 * Reads a run's header from the first bytes of a Part 10 file that may still be being
 * written. Undefined while the bytes end before Pixel Data's value starts (more is to
 * come). A header that is there but does not describe a native multi-frame run (grayscale, or 8-bit color)
 * is refused with its typed error (UNSUPPORTED_TRANSFER_SYNTAX for compressed pixels,
 * UNSUPPORTED_DICOM, INVALID_DICOM), since no more bytes can change it.
 */
export function readGrowingHeader(start: Buffer): GrowingRunHeader | undefined {
  if (start.length < 132) return undefined;
  if (start.toString('latin1', 128, 132) !== 'DICM') throw new ArteriaError('INVALID_DICOM', 'not a DICOM Part 10 file (no DICM preamble)');
  let dataSet: dicomParser.DataSet;
  try {
    dataSet = parseDataSet(start, { untilTag: PIXEL_DATA_TAG });
  } catch {
    return undefined; // the bytes end inside an element: more is to come
  }
  const element = dataSet.elements[PIXEL_DATA_TAG];
  if (element === undefined) return undefined;
  const syntax = dataSet.string('x00020010')?.replace(/\0/g, '').trim() ?? '';
  if (ENCAPSULATED_TRANSFER_SYNTAXES.has(syntax) || element.length === 0xffffffff || element.length < 0) {
    throw new ArteriaError('UNSUPPORTED_TRANSFER_SYNTAX', `a run sent while it is acquired must be native (uncompressed); this one's transfer syntax is ${syntax || 'unknown'}`);
  }
  const valueOffset = element.dataOffset;
  const tagOffset = valueOffset - (syntax === IMPLICIT_VR_LITTLE_ENDIAN ? 8 : 12);
  if (valueOffset > start.length) return undefined;
  const bytes = Buffer.from(start.subarray(0, valueOffset));
  const run = readSegmentedHeader(bytes);
  assertMultiFrameRun(run.header);
  const frameBytes = run.frameBytes;
  if (frameBytes <= 0 || element.length % frameBytes !== 0) {
    throw new ArteriaError('UNSUPPORTED_DICOM', `Pixel Data of ${element.length} bytes is not whole frames of ${frameBytes} bytes (${run.layout.rows}x${run.layout.columns})`);
  }
  // As de-identification decides it: YES, or a Secondary Capture that does not say NO.
  const burnedIn = mayHaveBurnedInAnnotation(dataSet.string('x00280301'), dataSet.string('x00080016'));
  return { bytes, tagOffset, valueOffset, pixelLength: element.length, run, frameBytes, burnedIn };
}

/** The first `maxBytes` of a file (fewer when it is shorter so far). */
export async function readFileStart(path: string, maxBytes: number): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(maxBytes);
    let filled = 0;
    while (filled < maxBytes) {
      const { bytesRead } = await file.read(buffer, filled, maxBytes - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await file.close();
  }
}

/** Reads `length` bytes at `position` (the caller knows they are there), into `into` when given (its first `length` bytes). */
export async function readRange(path: string, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const buffer = into === undefined ? Buffer.allocUnsafe(length) : into.subarray(0, length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await file.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) throw new ArteriaError('INPUT_NOT_FOUND', `${path} is shorter than it was: ${position + filled} bytes, ${position + length} expected`);
      filled += bytesRead;
    }
    return buffer;
  } finally {
    await file.close();
  }
}
