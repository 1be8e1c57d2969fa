/**
 * Encapsulated (compressed) Pixel Data: splits the fragments into frames (Basic or Extended
 * Offset Table, one fragment per frame, or the codestreams' start markers when neither says)
 * and decodes each frame with the syntax's codec into one aligned array.
 */
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { ArteriaError } from '@arteria/protocol';
import { luminance } from './color.js';
import { assertEncodedFrameSize } from './frame-size.js';
import type { CodecFamily, FrameGeometry, PixelCodecs } from './pixel-codecs.js';

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Extended Offset Table (7FE0,0001): 64-bit frame offsets, with an empty Basic Offset Table (large runs). */
const EXTENDED_OFFSET_TABLE_TAG = 'x7fe00001';

/** The bytes a frame's first fragment starts with: JPEG's SOI marker, or JPEG 2000's SOC and SIZ. */
const FRAME_START: Partial<Record<CodecFamily, readonly number[]>> = {
  jpeg: [0xff, 0xd8],
  'jpeg-ls': [0xff, 0xd8],
  jpeg2000: [0xff, 0x4f, 0xff, 0x51],
  htj2k: [0xff, 0x4f, 0xff, 0x51],
};

/** The Extended Offset Table's offsets, when the data set has one. */
function extendedOffsets(dataSet: DataSet): number[] | undefined {
  const element = dataSet.elements[EXTENDED_OFFSET_TABLE_TAG];
  if (element === undefined || element.length === 0) return undefined;
  if (element.length % 8 !== 0 || element.dataOffset + element.length > dataSet.byteArray.length) {
    throw new ArteriaError('INVALID_DICOM', `Extended Offset Table (7FE0,0001) is ${element.length} bytes, not whole 64-bit offsets`);
  }
  const view = new DataView(dataSet.byteArray.buffer, dataSet.byteArray.byteOffset + element.dataOffset, element.length);
  return Array.from({ length: element.length / 8 }, (_, i) => Number(view.getBigUint64(i * 8, true)));
}

/**
 * The first fragment of each frame. From an offset table (basic, else extended) when there is
 * one; else one fragment a frame when the counts agree; else, for JPEG, JPEG-LS and JPEG 2000,
 * each fragment that starts with the codestream's start marker begins a frame (a frame split
 * into several fragments, which the standard allows, with no table to say where).
 */
function frameStarts(dataSet: DataSet, element: Element, family: CodecFamily, frameCount: number): number[] {
  const fragments = element.fragments ?? [];
  if (fragments.length === 0) throw new ArteriaError('INVALID_DICOM', 'encapsulated Pixel Data holds no fragments');
  const basic = element.basicOffsetTable ?? [];
  const [table, name] = basic.length > 0 ? [basic, 'Basic Offset Table'] : [extendedOffsets(dataSet), 'Extended Offset Table'];
  if (table !== undefined) {
    if (table.length !== frameCount) throw new ArteriaError('INVALID_DICOM', `${name} lists ${table.length} frames; NumberOfFrames is ${frameCount}`);
    const fragmentAt = new Map(fragments.map((fragment, index) => [fragment.offset, index]));
    const starts: number[] = [];
    for (const [f, offset] of table.entries()) {
      const index = fragmentAt.get(offset);
      if (index === undefined || index <= (starts[f - 1] ?? -1)) {
        throw new ArteriaError('INVALID_DICOM', `${name} puts frame ${f + 1} at byte ${offset}, where no fragment starts after the previous frame's`);
      }
      starts.push(index);
    }
    return starts;
  }
  if (frameCount === 1) return [0];
  if (fragments.length === frameCount) return fragments.map((_, index) => index);
  const marker = FRAME_START[family];
  if (marker !== undefined) {
    const bytes = dataSet.byteArray;
    const starts = fragments.flatMap((fragment, index) => (fragment.length >= marker.length && marker.every((b, i) => bytes[fragment.position + i] === b) ? [index] : []));
    if (starts.length === frameCount && starts[0] === 0) return starts;
    throw new ArteriaError('INVALID_DICOM', `found ${starts.length} ${family} frame starts in ${fragments.length} fragments; NumberOfFrames is ${frameCount}`);
  }
  throw new ArteriaError('INVALID_DICOM', `${family} Pixel Data has ${fragments.length} fragments for ${frameCount} frames and no offset table`);
}

/** Reads frame `index`'s bytes, joining its fragments when it has several. */
function frameSplitter(dataSet: DataSet, element: Element, family: CodecFamily, frameCount: number): (index: number) => Uint8Array {
  const starts = frameStarts(dataSet, element, family, frameCount);
  const fragmentCount = element.fragments?.length ?? 0;
  return (index) => dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, element, starts[index]!, (starts[index + 1] ?? fragmentCount) - starts[index]!);
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
  const color = geometry.samplesPerPixel === 3;
  // What the codec writes for one frame; a color frame is kept as its luminance, a third of it.
  const frameBytes = frameSamples * bytesPerSample * geometry.samplesPerPixel;
  const keptBytes = frameSamples * bytesPerSample;
  // Checked before any allocation: Rows, Columns and NumberOfFrames are the sender's to choose.
  if (keptBytes * frameCount > maxDecodedBytes) {
    throw new ArteriaError('INPUT_TOO_LARGE', `${frameCount} frames of ${geometry.rows} x ${geometry.columns} x ${bytesPerSample} bytes decode to ${keptBytes * frameCount} bytes; the limit is ${maxDecodedBytes}`);
  }
  const frameOf = frameSplitter(dataSet, element, family, frameCount);
  const pixels = bytesPerSample === 1 ? new Uint8Array(frameSamples * frameCount) : new Uint16Array(frameSamples * frameCount);
  const target = new Uint8Array(pixels.buffer);
  for (let f = 0; f < frameCount; f++) {
    let frame;
    try {
      const encoded = frameOf(f);
      assertEncodedFrameSize(family, encoded, geometry, f);
      frame = codecs.decodeFrame(family, encoded, geometry);
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      throw new ArteriaError('INVALID_DICOM', `frame ${f + 1} of ${frameCount} cannot be decoded: ${messageOf(err)}`, { cause: err });
    }
    const decoded = frame.bytes;
    if (decoded.length !== frameBytes) {
      const samples = color ? ' x 3 samples' : '';
      throw new ArteriaError('INVALID_DICOM', `frame ${f + 1} decoded to ${decoded.length} bytes; ${geometry.rows} x ${geometry.columns} x ${bytesPerSample}${samples} = ${frameBytes} expected`);
    }
    // Codecs write little-endian samples, the byte order of every host Node runs on here.
    // Color frames come as full-resolution Y Cb Cr from JPEG's YBR (whatever its subsampling),
    // else as RGB: JPEG 2000's decoder undoes its color transform (YBR_ICT, YBR_RCT) itself,
    // though it reports the label it was given.
    const rgb = family === 'jpeg2000' || family === 'htj2k' || frame.photometric === 'RGB';
    if (color) luminance(decoded, frameSamples, rgb, frame.planarConfiguration === 1, target, f * keptBytes);
    else target.set(decoded.subarray(0, frameBytes), f * frameBytes);
  }
  if (pixels instanceof Uint16Array && geometry.bitsStored < 16) {
    const mask = (1 << geometry.bitsStored) - 1;
    for (let i = 0; i < pixels.length; i++) pixels[i] = (pixels[i] ?? 0) & mask;
  }
  return pixels;
}
