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
 * Transfer syntaxes accepted, most preferred first. Compressed syntaxes are declined at
 * association time (a modality then falls back to an uncompressed one it also proposed):
 * de-identification rewrites the header and, for masking, the pixels, which needs native pixel data.
 */
export const ACCEPTED_TRANSFER_SYNTAXES: readonly string[] = [
  '1.2.840.10008.1.2.1', // Explicit VR Little Endian
  '1.2.840.10008.1.2', // Implicit VR Little Endian
];
