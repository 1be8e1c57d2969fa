import { ArteriaError } from '@arteria/protocol';
import { nativeColorLuminance } from './color.js';
import { runLayout, viewUint16 } from './decode.js';
import { isColor } from './header.js';
import { parsePart10 } from './part10.js';
import { NATIVE_TRANSFER_SYNTAXES, describeTransferSyntax } from './transfer-syntax.js';
import type { DicomHeader, FrameLayout, FrameStack } from './types.js';

/** The header of a run sent while it is acquired, and the geometry its segments follow. */
export interface SegmentedRunHeader {
  header: DicomHeader;
  /** The frame layout without a frame count (known only when the run ends): for color, the luminance the frames become. */
  layout: Omit<FrameLayout, 'frameCount'>;
  bytesPerSample: 1 | 2;
  /** Bytes of one frame as it is sent: rows x columns x bytesPerSample, times 3 for color. */
  frameBytes: number;
}

/**
 * Reads a segmented run's header object: a Part 10 file up to the value of its Pixel Data,
 * which must be native (uncompressed): grayscale, or 8-bit color (RGB or YBR_FULL, by pixel or
 * by plane), whose frames become luminance (segmentFrames). Its Number of Frames may be anything (the
 * planned count, or 0): the run's end says how many frames there are. INVALID_DICOM,
 * UNSUPPORTED_TRANSFER_SYNTAX or UNSUPPORTED_DICOM as for any run.
 */
export function readSegmentedHeader(bytes: Uint8Array): SegmentedRunHeader {
  const { header, dataSet } = parsePart10(bytes);
  if (!NATIVE_TRANSFER_SYNTAXES.includes(header.transferSyntaxUid)) {
    throw new ArteriaError('UNSUPPORTED_TRANSFER_SYNTAX', `a run sent while it is acquired must be native (uncompressed); this one is ${describeTransferSyntax(header.transferSyntaxUid)}`);
  }
  if (header.bitsAllocated !== 8 && header.bitsAllocated !== 16) throw new ArteriaError('UNSUPPORTED_DICOM', `BitsAllocated ${header.bitsAllocated}: expected 8 or 16`);
  // runLayout refuses what is not decodable: other sample counts, color that is not 8-bit RGB or YBR_FULL.
  const { frameCount: _planned, ...layout } = runLayout({ ...header, numberOfFrames: Math.max(1, header.numberOfFrames) }, dataSet);
  const bytesPerSample = header.bitsAllocated === 16 ? 2 : 1;
  return { header, layout, bytesPerSample, frameBytes: layout.rows * layout.columns * bytesPerSample * (isColor(header) ? 3 : 1) };
}

/**
 * The frames a segment object holds (the native pixel bytes of whole frames), as a stack;
 * 16-bit samples are viewed in place when aligned. Refuses a size that is not exactly
 * `frameCount` frames (SEGMENT_MISMATCH).
 */
export function segmentFrames(run: SegmentedRunHeader, bytes: Uint8Array, frameCount: number): FrameStack {
  const expected = run.frameBytes * frameCount;
  if (bytes.length !== expected) {
    throw new ArteriaError('SEGMENT_MISMATCH', `a segment of ${frameCount} frames of ${run.frameBytes} bytes (${run.layout.rows}x${run.layout.columns}) holds ${expected} bytes, this one ${bytes.length}`);
  }
  const samples = run.layout.rows * run.layout.columns * frameCount;
  // Color frames become luminance here, as a whole run's do when decoded (color.ts).
  const pixels = isColor(run.header) ? nativeColorLuminance(bytes, frameCount, run.header) : run.bytesPerSample === 2 ? viewUint16(bytes, samples, run.layout.bitsStored) : bytes;
  return { ...run.layout, frameCount, pixels };
}
