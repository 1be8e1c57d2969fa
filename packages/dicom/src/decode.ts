import type { DataSet } from 'dicom-parser';
import { ArteriaError } from '@arteria/protocol';
import { decodeEncapsulated } from './encapsulated.js';
import { DEFAULT_MAX_INFLATED_BYTES, boundedInflater } from './inflate.js';
import { parseDataSet } from './newer-vrs.js';
import { nativeColorLuminance } from './color.js';
import { assertDecodablePixels, isColor } from './header.js';
import { PIXEL_DATA_TAG, parsePart10, parserReason } from './part10.js';
import { loadPixelCodecs, type PixelCodecs } from './pixel-codecs.js';
import { ENCAPSULATED_TRANSFER_SYNTAXES, JPEG_BASELINE, JPEG_EXTENDED, NATIVE_TRANSFER_SYNTAXES, assertDecodableTransferSyntax, describeTransferSyntax } from './transfer-syntax.js';
import type { DicomHeader, FrameLayout, FrameStack } from './types.js';

/** Most bytes the frames of a compressed run may decode to (2 GiB, the platform's default input limit). */
export const DEFAULT_MAX_DECODED_BYTES = 2 * 1024 ** 3;

/** Used when nothing in a file gives its frame rate (see DicomHeader.frameTimeMs). */
export const DEFAULT_FRAME_TIME_MS = 1000 / 15;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Decodes a Part 10 run in any supported transfer syntax (grayscale, or color as luminance), loading the
 * compressed-frame codecs first when the run needs them.
 */
export async function decodeRun(bytes: Uint8Array, options: DecodeOptions = {}): Promise<{ header: DicomHeader; frames: FrameStack }> {
  const { header } = parsePart10(bytes);
  assertDecodableTransferSyntax(header.transferSyntaxUid);
  const codecs = ENCAPSULATED_TRANSFER_SYNTAXES[header.transferSyntaxUid] === undefined ? undefined : await loadPixelCodecs();
  return decodeFrames(bytes, codecs, options);
}

export interface DecodeOptions {
  /**
   * The caller hands the file's bytes over: uncompressed pixels may then be a view of them
   * instead of a copy (when aligned), and 16-bit samples are masked to BitsStored in place.
   * Saves a copy of the whole run; the caller must not use `bytes` afterwards.
   */
  consumeBytes?: boolean;
  /** Most bytes the frames of a compressed run may decode to; beyond it INPUT_TOO_LARGE, before decoding (default 2 GiB). */
  maxDecodedBytes?: number;
}

/**
 * Decodes the frames of a grayscale Part 10 file into one aligned typed array, copied
 * out of the file's bytes unless `consumeBytes` is set. Compressed syntaxes need `codecs`
 * (see decodeRun).
 */
export function decodeFrames(bytes: Uint8Array, codecs?: PixelCodecs, options: DecodeOptions = {}): { header: DicomHeader; frames: FrameStack } {
  const { dataSet, header } = parsePart10(bytes);
  const layout = runLayout(header, dataSet);
  const stack = (pixels: Uint8Array | Uint16Array): { header: DicomHeader; frames: FrameStack } => ({ header, frames: { ...layout, pixels } });

  const family = ENCAPSULATED_TRANSFER_SYNTAXES[header.transferSyntaxUid];
  if (family !== undefined) {
    if (codecs === undefined) throw new ArteriaError('INTERNAL', `decoding ${describeTransferSyntax(header.transferSyntaxUid)} needs the pixel codecs: use decodeRun`);
    if (header.transferSyntaxUid === JPEG_BASELINE && header.bitsAllocated !== 8) {
      throw new ArteriaError('INVALID_DICOM', `${describeTransferSyntax(JPEG_BASELINE)} holds 8-bit samples; BitsAllocated is ${header.bitsAllocated}`);
    }
    if (header.transferSyntaxUid === JPEG_EXTENDED && header.bitsStored > 12) {
      throw new ArteriaError('INVALID_DICOM', `${describeTransferSyntax(JPEG_EXTENDED)} holds samples of 8 or 12 bits; BitsStored is ${header.bitsStored}`);
    }
    // The header parse stops at Pixel Data; the fragments need the element parsed in full.
    const full = parseWhole(bytes);
    const pixelData = full.elements[PIXEL_DATA_TAG];
    if (pixelData === undefined) throw new ArteriaError('INVALID_DICOM', 'Pixel Data (7FE0,0010) cannot be read');
    const geometry = { rows: header.rows, columns: header.columns, bitsAllocated: header.bitsAllocated, bitsStored: header.bitsStored, photometric: header.photometricInterpretation, samplesPerPixel: isColor(header) ? 3 : 1, planarConfiguration: header.planarConfiguration } as const;
    return stack(decodeEncapsulated(full, pixelData, family, codecs, geometry, layout.frameCount, options.maxDecodedBytes ?? DEFAULT_MAX_DECODED_BYTES));
  }
  const span = nativePixelSpan(header, dataSet, bytes.length);
  const source = bytes.subarray(span.dataOffset, span.dataOffset + span.byteLength);
  if (isColor(header)) return stack(nativeColorLuminance(source, header.numberOfFrames, header));
  const samples = span.byteLength / span.bytesPerSample;
  if (options.consumeBytes === true) {
    // A plain Uint8Array even when the file is a Buffer: algorithms see one type either way.
    return stack(span.bytesPerSample === 1 ? new Uint8Array(source.buffer, source.byteOffset, source.length) : viewUint16(source, samples, header.bitsStored));
  }
  const pixels = span.bytesPerSample === 1 ? copyUint8(source) : copyUint16(source, samples, header.bitsStored);
  return stack(pixels);
}

/**
 * The frame geometry of a parsed header, after the checks every decoder makes: a
 * decodable image with a positive frame count. Color runs are laid out as what they decode
 * to: 8-bit MONOCHROME2 luminance.
 */
export function runLayout(header: DicomHeader, dataSet: DataSet): FrameLayout {
  assertDecodableTransferSyntax(header.transferSyntaxUid);
  assertDecodablePixels(header);
  if (dataSet.elements[PIXEL_DATA_TAG] === undefined) throw new ArteriaError('UNSUPPORTED_DICOM', 'not an image: no Pixel Data (7FE0,0010)');
  const frameCount = header.numberOfFrames;
  if (!Number.isSafeInteger(frameCount) || frameCount < 1) {
    throw new ArteriaError('INVALID_DICOM', `NumberOfFrames ${frameCount} is not a positive integer`);
  }
  return {
    rows: header.rows,
    columns: header.columns,
    frameCount,
    bitsStored: isColor(header) ? 8 : header.bitsStored,
    photometric: header.photometricInterpretation === 'MONOCHROME1' ? 'MONOCHROME1' : 'MONOCHROME2',
    frameTimeMs: header.frameTimeMs ?? DEFAULT_FRAME_TIME_MS,
  };
}

/** Where a native (uncompressed) run's pixels lie in its file. */
export interface NativePixelSpan {
  dataOffset: number;
  /** Rows x Columns x NumberOfFrames x bytesPerSample (without a padding byte). */
  byteLength: number;
  bytesPerSample: 1 | 2;
}

/**
 * Checks that the Pixel Data of a native run holds exactly its frames and that a file of
 * `fileLength` bytes holds all of them: INVALID_DICOM otherwise.
 */
export function nativePixelSpan(header: DicomHeader, dataSet: DataSet, fileLength: number): NativePixelSpan {
  if (!NATIVE_TRANSFER_SYNTAXES.includes(header.transferSyntaxUid)) throw new ArteriaError('INTERNAL', `no decoder for ${header.transferSyntaxUid}`);
  const element = dataSet.elements[PIXEL_DATA_TAG];
  if (element === undefined) throw new ArteriaError('UNSUPPORTED_DICOM', 'not an image: no Pixel Data (7FE0,0010)');
  const bytesPerSample = header.bitsAllocated === 16 ? 2 : 1;
  const samples = isColor(header) ? 3 : 1;
  const expected = header.rows * header.columns * header.numberOfFrames * bytesPerSample * samples;
  // An odd 8-bit pixel payload carries one padding byte to keep the element even.
  const lengthOk = element.length === expected || (expected % 2 === 1 && element.length === expected + 1);
  if (element.hadUndefinedLength === true || !lengthOk) {
    const declared = element.hadUndefinedLength === true ? 'an undefined length' : `${element.length} bytes`;
    throw new ArteriaError(
      'INVALID_DICOM',
      `Pixel Data holds ${declared}; Rows ${header.rows} x Columns ${header.columns} x NumberOfFrames ${header.numberOfFrames} x ${bytesPerSample} byte(s)${samples === 1 ? '' : ` x ${samples} samples`} = ${expected}`,
    );
  }
  const available = fileLength - element.dataOffset;
  if (available < expected) {
    throw new ArteriaError('INVALID_DICOM', `file is truncated: Pixel Data needs ${expected} bytes, only ${Math.max(0, available)} remain`);
  }
  return { dataOffset: element.dataOffset, byteLength: expected, bytesPerSample };
}

function parseWhole(bytes: Uint8Array): DataSet {
  try {
    // Never a deflated run (runLayout refused it): the inflater is bounded all the same.
    return parseDataSet(bytes, { inflater: boundedInflater(DEFAULT_MAX_INFLATED_BYTES) });
  } catch (err) {
    if (err instanceof ArteriaError) throw err;
    const reason = parserReason(err);
    throw new ArteriaError('INVALID_DICOM', `encapsulated Pixel Data cannot be parsed: ${reason}`, { cause: err });
  }
}

/** A plain Uint8Array copy (Buffer#slice would share the file's memory). */
function copyUint8(source: Uint8Array): Uint8Array {
  const out = new Uint8Array(source.length);
  out.set(source);
  return out;
}

/** Copies little-endian 16-bit samples into an aligned array, dropping bits above BitsStored. */
export function copyUint16(source: Uint8Array, samples: number, bitsStored: number): Uint16Array {
  const out = new Uint16Array(samples);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(source);
  } else {
    const view = new DataView(source.buffer, source.byteOffset, source.byteLength);
    for (let i = 0; i < samples; i++) out[i] = view.getUint16(i * 2, true);
  }
  return maskToBitsStored(out, bitsStored);
}

/** The file's own 16-bit samples where they are aligned on a little-endian host; a copy otherwise. */
export function viewUint16(source: Uint8Array, samples: number, bitsStored: number): Uint16Array {
  if (!LITTLE_ENDIAN_HOST || source.byteOffset % 2 !== 0) return copyUint16(source, samples, bitsStored);
  return maskToBitsStored(new Uint16Array(source.buffer, source.byteOffset, samples), bitsStored);
}

/** Bits above BitsStored may hold overlays or garbage; they are not pixel values. */
function maskToBitsStored(samples: Uint16Array, bitsStored: number): Uint16Array {
  if (bitsStored < 16) {
    const mask = (1 << bitsStored) - 1;
    for (let i = 0; i < samples.length; i++) samples[i] = (samples[i] ?? 0) & mask;
  }
  return samples;
}
