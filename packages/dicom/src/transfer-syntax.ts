import { ArteriaError } from '@arteria/protocol';

/** Transfer syntaxes whose pixel data Arteria decodes (native, little endian). */
export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
/** Lossy JPEG of 8 (Process 2) or 12 (Process 4) bits per sample. */
export const JPEG_EXTENDED = '1.2.840.10008.1.2.4.51';
export const JPEG_LOSSLESS = '1.2.840.10008.1.2.4.57';
export const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
export const JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80';
export const JPEG_LS_NEAR_LOSSLESS = '1.2.840.10008.1.2.4.81';
export const RLE_LOSSLESS = '1.2.840.10008.1.2.5';
export const JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90';
export const JPEG_2000 = '1.2.840.10008.1.2.4.91';
export const HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';
export const HTJ2K_LOSSLESS_RPCL = '1.2.840.10008.1.2.4.202';
export const HTJ2K = '1.2.840.10008.1.2.4.203';

/** Native syntaxes: pixels stored as plain little-endian samples. */
export const NATIVE_TRANSFER_SYNTAXES: readonly string[] = [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN];

/** Encapsulated syntaxes Arteria decodes, and the codec each needs. */
export const ENCAPSULATED_TRANSFER_SYNTAXES: Readonly<Record<string, 'jpeg' | 'jpeg-ls' | 'rle' | 'jpeg2000' | 'htj2k'>> = {
  [JPEG_BASELINE]: 'jpeg',
  [JPEG_EXTENDED]: 'jpeg',
  [JPEG_LOSSLESS]: 'jpeg',
  [JPEG_LOSSLESS_SV1]: 'jpeg',
  [JPEG_LS_LOSSLESS]: 'jpeg-ls',
  [JPEG_LS_NEAR_LOSSLESS]: 'jpeg-ls',
  [RLE_LOSSLESS]: 'rle',
  [JPEG_2000_LOSSLESS]: 'jpeg2000',
  [JPEG_2000]: 'jpeg2000',
  [HTJ2K_LOSSLESS]: 'htj2k',
  [HTJ2K_LOSSLESS_RPCL]: 'htj2k',
  [HTJ2K]: 'htj2k',
};

export const DECODABLE_TRANSFER_SYNTAXES: readonly string[] = [...NATIVE_TRANSFER_SYNTAXES, ...Object.keys(ENCAPSULATED_TRANSFER_SYNTAXES)];

/** Names of the transfer syntaxes a modality or PACS is likely to send, for error messages. */
const NAMES: Readonly<Record<string, string>> = {
  [IMPLICIT_VR_LITTLE_ENDIAN]: 'Implicit VR Little Endian',
  [EXPLICIT_VR_LITTLE_ENDIAN]: 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless, Non-Hierarchical (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless, First-Order Prediction (Process 14, SV1)',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile / Main Level',
  '1.2.840.10008.1.2.4.101': 'MPEG2 Main Profile / High Level',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.107': 'HEVC/H.265 Main Profile / Level 5.1',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
};

/** "UID (Name)" when the name is known, else the bare UID. */
export function describeTransferSyntax(uid: string): string {
  const name = NAMES[uid];
  return name === undefined ? uid : `${uid} (${name})`;
}

/** Throws UNSUPPORTED_TRANSFER_SYNTAX, naming the syntax and those Arteria decodes, unless it is decodable. */
export function assertDecodableTransferSyntax(uid: string): void {
  if (!DECODABLE_TRANSFER_SYNTAXES.includes(uid)) {
    throw new ArteriaError(
      'UNSUPPORTED_TRANSFER_SYNTAX',
      `transfer syntax ${describeTransferSyntax(uid)} is not supported; Arteria decodes ${DECODABLE_TRANSFER_SYNTAXES.map(describeTransferSyntax).join(', ')}`,
    );
  }
}
