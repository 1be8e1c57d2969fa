import { EXPLICIT_VR_LITTLE_ENDIAN, HTJ2K, HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL, IMPLICIT_VR_LITTLE_ENDIAN, JPEG_2000, JPEG_2000_LOSSLESS, JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS, RLE_LOSSLESS } from './transfer-syntax.js';

/** Storage SOP classes the gateway accepts from a modality: X-ray angiography and fluoroscopy, and secondary capture. */
export const ACCEPTED_STORAGE_CLASSES: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10008.5.1.4.1.1.12.1', 'X-Ray Angiographic Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.12.1.1', 'Enhanced XA Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.12.2', 'X-Ray Radiofluoroscopic Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.12.2.1', 'Enhanced XRF Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.7', 'Secondary Capture Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.7.1', 'Multi-frame Single Bit Secondary Capture Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.7.2', 'Multi-frame Grayscale Byte Secondary Capture Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.7.3', 'Multi-frame Grayscale Word Secondary Capture Image Storage'],
  ['1.2.840.10008.5.1.4.1.1.7.4', 'Multi-frame True Color Secondary Capture Image Storage'],
]);

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';

/**
 * Transfer syntaxes accepted: native, and the compressed ones the platform decodes. Of those a
 * caller proposes, the receiver takes the first in the caller's order, and keeps the data set
 * exactly as it arrives (never transcoded). De-identification rewrites only the header of a
 * compressed run and copies its fragments untouched; burned-in annotation in compressed
 * pixels cannot be masked, so such a run is refused.
 */
export const ACCEPTED_TRANSFER_SYNTAXES: readonly string[] = [
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  JPEG_LS_LOSSLESS,
  JPEG_LOSSLESS_SV1,
  JPEG_LOSSLESS,
  RLE_LOSSLESS,
  JPEG_LS_NEAR_LOSSLESS,
  JPEG_BASELINE,
  JPEG_EXTENDED,
  JPEG_2000_LOSSLESS,
  HTJ2K_LOSSLESS,
  HTJ2K_LOSSLESS_RPCL,
  JPEG_2000,
  HTJ2K,
];

/** Encapsulated (compressed) syntaxes among those accepted: their pixels cannot be masked. */
export const ENCAPSULATED_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set(ACCEPTED_TRANSFER_SYNTAXES.slice(2));
