/**
 * Encapsulated (compressed) Pixel Data: splits the fragments into frames (Basic Offset
 * Table, one fragment per frame, or JPEG / JPEG-LS markers when neither says) and decodes each
 * frame with the syntax's codec into one aligned array.
 */
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { ArteriaError } from '@arteria/protocol';
import { assertEncodedFrameSize } from './frame-size.js';
import type { CodecFamily, FrameGeometry, PixelCodecs } from './pixel-codecs.js';

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function frameSplitter(dataSet: DataSet, element: Element, family: CodecFamily, frameCount: number): (index: number) => Uint8Array {
  const fragments = element.fragments ?? [];
  if (fragments.length === 0) throw new ArteriaError('INVALID_DICOM', 'encapsulated Pixel Data holds no fragments');
  const offsets = element.basicOffsetTable ?? [];
  if (offsets.length > 0) {
    if (offsets.length !== frameCount) {
      throw new ArteriaError('INVALID_DICOM', `Basic Offset Table lists ${offsets.length} frames; NumberOfFrames is ${frameCount}`);
    }
    return (index) => dicomParser.readEncapsulatedImageFrame(dataSet, element, index);
  }
  if (frameCount === 1) return () => dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, element, 0, fragments.length);
  if (fragments.length === frameCount) return (index) => dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, element, index, 1);
  if (family === 'jpeg' || family === 'jpeg-ls') {
    // No offset table and several fragments per frame: frames start at JPEG SOI markers.
    const table = dicomParser.createJPEGBasicOffsetTable(dataSet, element);
    if (table.length !== frameCount) {
      throw new ArteriaError('INVALID_DICOM', `found ${table.length} JPEG frames in the fragments; NumberOfFrames is ${frameCount}`);
    }
    return (index) => dicomParser.readEncapsulatedImageFrame(dataSet, element, index, table);
  }
  throw new ArteriaError('INVALID_DICOM', `${family} Pixel Data has ${fragments.length} fragments for ${frameCount} frames and no offset table`);
}

/** Decodes every frame of encapsulated Pixel Data into frame-major samples. */
export function decodeEncapsulated(
  dataSet: DataSet,
  element: Element,
  family: CodecFamily,
  codecs: PixelCodecs,
  geometry: FrameGeometry,
  frameCount: number,
  maxDecodedBytes: number,
): Uint8Array | Uint16Array {
  if (element.hadUndefinedLength !== true) {
    throw new ArteriaError('INVALID_DICOM', 'compressed Pixel Data must be encapsulated (undefined length)');
  }
  const bytesPerSample = geometry.bitsAllocated / 8;
  const frameSamples = geometry.rows * geometry.columns;
  const frameBytes = frameSamples * bytesPerSample;
  // Checked before any allocation: Rows, Columns and NumberOfFrames are the sender's to choose.
  if (frameBytes * frameCount > maxDecodedBytes) {
    throw new ArteriaError('INPUT_TOO_LARGE', `${frameCount} frames of ${geometry.rows} x ${geometry.columns} x ${bytesPerSample} bytes decode to ${frameBytes * frameCount} bytes; the limit is ${maxDecodedBytes}`);
  }
  const frameOf = frameSplitter(dataSet, element, family, frameCount);
  const pixels = bytesPerSample === 1 ? new Uint8Array(frameSamples * frameCount) : new Uint16Array(frameSamples * frameCount);
  const target = new Uint8Array(pixels.buffer);
  for (let f = 0; f < frameCount; f++) {
    let decoded: Uint8Array;
    try {
      const encoded = frameOf(f);
      assertEncodedFrameSize(family, encoded, geometry, f);
      decoded = codecs.decodeFrame(family, encoded, geometry);
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      throw new ArteriaError('INVALID_DICOM', `frame ${f + 1} of ${frameCount} cannot be decoded: ${messageOf(err)}`, { cause: err });
    }
    if (decoded.length !== frameBytes) {
      throw new ArteriaError('INVALID_DICOM', `frame ${f + 1} decoded to ${decoded.length} bytes; ${geometry.rows} x ${geometry.columns} x ${bytesPerSample} = ${frameBytes} expected`);
    }
    // Codecs write little-endian samples, the byte order of every host Node runs on here.
    target.set(decoded.subarray(0, frameBytes), f * frameBytes);
  }
  if (pixels instanceof Uint16Array && geometry.bitsStored < 16) {
    const mask = (1 << geometry.bitsStored) - 1;
    for (let i = 0; i < pixels.length; i++) pixels[i] = (pixels[i] ?? 0) & mask;
  }
  return pixels;
}
