import dicomParser from 'dicom-parser';
import {
  DEFAULT_MAX_INFLATED_BYTES,
  ENCAPSULATED_TRANSFER_SYNTAXES,
  IMPLICIT_VR_LITTLE_ENDIAN,
  NATIVE_TRANSFER_SYNTAXES,
  PIXEL_DATA_TAG,
  boundedInflater,
  parseDataSet,
} from '@arteria/dicom';
import { mayHaveBurnedInAnnotation } from './burned-in.js';

/** Where the top-level Pixel Data element starts, and what decides how the run is de-identified. */
export interface PixelDataLocation {
  /** Offset of the Pixel Data element's tag: everything before it is the header. */
  start: number;
  transferSyntaxUid: string;
  /** Fragments (compressed frames) rather than native samples. */
  encapsulated: boolean;
  /** Burned In Annotation (0028,0301) is YES. */
  burnedIn: boolean;
}

/**
 * Finds the top-level Pixel Data element in the first bytes of a Part 10 file (the header
 * and possibly more), for layouts where the header can be rewritten in front of the pixel
 * bytes as they are: little endian, native or encapsulated, not deflated. Undefined otherwise
 * (the caller then parses the whole object, which reports what is wrong with it).
 */
export function locatePixelData(bytes: Uint8Array): PixelDataLocation | undefined {
  let element: dicomParser.Element | undefined;
  let syntax: string | undefined;
  let burnedIn = false;
  try {
    const ds = parseDataSet(bytes, { untilTag: PIXEL_DATA_TAG, inflater: boundedInflater(DEFAULT_MAX_INFLATED_BYTES) });
    syntax = ds.string('x00020010')?.replace(/\0/g, '').trim();
    burnedIn = mayHaveBurnedInAnnotation(ds.string('x00280301'), ds.string('x00080016'));
    element = ds.elements[PIXEL_DATA_TAG];
  } catch {
    return undefined;
  }
  if (element === undefined || syntax === undefined) return undefined;
  const encapsulated = ENCAPSULATED_TRANSFER_SYNTAXES.has(syntax);
  if (!encapsulated && !NATIVE_TRANSFER_SYNTAXES.includes(syntax)) return undefined;
  // Pixel Data's element header: tag, then (explicit VR) "OB"/"OW", 2 reserved bytes and a
  // 4-byte length; (implicit VR) a 4-byte length.
  const start = element.dataOffset - (syntax === IMPLICIT_VR_LITTLE_ENDIAN ? 8 : 12);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (start < 132 || start + 12 > view.length || view.readUInt16LE(start) !== 0x7fe0 || view.readUInt16LE(start + 2) !== 0x0010) return undefined;
  // Encapsulated pixel data has an undefined length and starts with an item (the basic offset table).
  if (encapsulated && (view.readUInt32LE(start + 8) !== 0xffffffff || (start + 16 <= view.length && view.readUInt32LE(start + 12) !== 0xe000fffe))) return undefined;
  return { start, transferSyntaxUid: syntax, encapsulated, burnedIn };
}
