import { open } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';
import { parsePart10 } from './part10.js';
import { COLOR_PHOTOMETRICS, NATIVE_COLOR_PHOTOMETRICS } from './color.js';
import { NATIVE_TRANSFER_SYNTAXES, RLE_LOSSLESS, assertDecodableTransferSyntax } from './transfer-syntax.js';
import type { DicomHeader } from './types.js';

/** Runs can be several GB; their headers fit comfortably in the first few MB. */
export const DEFAULT_MAX_HEADER_BYTES = 4 * 1024 * 1024;

/** Reads the header of a Part 10 file held in memory (whole file or its first chunk). */
export function readHeader(bytes: Uint8Array): DicomHeader {
  return parsePart10(bytes).header;
}

export interface ReadHeaderFromFileOptions {
  /** How many bytes from the start of the file to read at most (default 4 MiB). */
  maxHeaderBytes?: number;
}

/** Reads only the first chunk of a file from disk and parses its header. */
export async function readHeaderFromFile(path: string, options: ReadHeaderFromFileOptions = {}): Promise<DicomHeader> {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 132) {
    throw new ArteriaError('CONFIG_INVALID', `maxHeaderBytes must be an integer >= 132, got ${maxHeaderBytes}`);
  }
  const handle = await open(path, 'r');
  let chunk: Uint8Array;
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.allocUnsafe(Math.min(size, maxHeaderBytes));
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    chunk = buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
  try {
    return readHeader(chunk);
  } catch (err) {
    if (err instanceof ArteriaError && err.code === 'INVALID_DICOM' && chunk.length === maxHeaderBytes) {
      throw new ArteriaError('INVALID_DICOM', `${err.message} (only the first ${maxHeaderBytes} bytes were read; raise maxHeaderBytes if the header is larger)`, {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Throws UNSUPPORTED_TRANSFER_SYNTAX or UNSUPPORTED_DICOM unless the header describes a
 * grayscale multi-frame run whose pixels Arteria can hand to an algorithm. XA and RF are
 * expected; other modalities pass, the algorithm's manifest decides whether it takes them.
 * The gateway checks this before anything is stored or uploaded (a run of video frames,
 * gigabytes perhaps, is refused on-site, not after it crossed the hospital's link).
 */
export function assertMultiFrameRun(header: DicomHeader): void {
  assertDecodableTransferSyntax(header.transferSyntaxUid);
  assertDecodablePixels(header);
  if (header.numberOfFrames < 2) {
    throw new ArteriaError('UNSUPPORTED_DICOM', `NumberOfFrames ${header.numberOfFrames}: expected a multi-frame run (2 frames or more)`);
  }
}

/** The pixel-format part of the run check, shared with frame decoding. */
export function assertDecodablePixels(header: DicomHeader): void {
  const problem = pixelProblem(header);
  if (problem !== undefined) throw new ArteriaError('UNSUPPORTED_DICOM', problem);
}

/** Whether a run's pixels are color (decoded to 8-bit luminance, color.ts). */
export const isColor = (h: DicomHeader): boolean => h.samplesPerPixel === 3;

function pixelProblem(h: DicomHeader): string | undefined {
  if (!h.hasPixelData) return `not an image: no Pixel Data (7FE0,0010) (SOP class ${h.sopClassUid})`;
  if (isColor(h)) return colorProblem(h);
  if (h.samplesPerPixel !== 1) return `SamplesPerPixel ${h.samplesPerPixel}: expected 1 (grayscale) or 3 (color)`;
  if (h.photometricInterpretation !== 'MONOCHROME1' && h.photometricInterpretation !== 'MONOCHROME2') {
    return `PhotometricInterpretation "${h.photometricInterpretation}": expected MONOCHROME1 or MONOCHROME2 (or, with 3 samples, ${COLOR_PHOTOMETRICS.join(', ')})`;
  }
  if (h.bitsAllocated !== 8 && h.bitsAllocated !== 16) return `BitsAllocated ${h.bitsAllocated}: expected 8 or 16`;
  if (h.bitsStored < 1 || h.bitsStored > h.bitsAllocated) {
    return `BitsStored ${h.bitsStored} does not fit BitsAllocated ${h.bitsAllocated}`;
  }
  if (h.pixelRepresentation !== 0) return `PixelRepresentation ${h.pixelRepresentation} (signed): expected 0 (unsigned)`;
  return undefined;
}

function colorProblem(h: DicomHeader): string | undefined {
  const pi = h.photometricInterpretation;
  if (!COLOR_PHOTOMETRICS.includes(pi)) return `PhotometricInterpretation "${pi}" with 3 samples: expected ${COLOR_PHOTOMETRICS.join(', ')}`;
  if (h.bitsAllocated !== 8 || h.bitsStored !== 8) return `color with BitsAllocated ${h.bitsAllocated}, BitsStored ${h.bitsStored}: expected 8-bit samples`;
  if (h.pixelRepresentation !== 0) return `PixelRepresentation ${h.pixelRepresentation} (signed): expected 0 (unsigned)`;
  const native = NATIVE_TRANSFER_SYNTAXES.includes(h.transferSyntaxUid);
  if (native && !NATIVE_COLOR_PHOTOMETRICS.includes(pi)) return `PhotometricInterpretation "${pi}" in uncompressed pixels: expected ${NATIVE_COLOR_PHOTOMETRICS.join(' or ')}`;
  if (h.planarConfiguration !== 0 && h.planarConfiguration !== 1) return `PlanarConfiguration ${h.planarConfiguration}: expected 0 or 1`;
  if (h.transferSyntaxUid === RLE_LOSSLESS) return 'color runs in RLE Lossless are not decoded (grayscale RLE is)';
  return undefined;
}
