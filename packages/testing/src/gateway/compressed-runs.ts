import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDataSet } from '@arteria/dicom';
import { exec } from './dicom-tools.js';
import { phiRun } from './phi.js';

// Compressed runs made by DCMTK, for the de-identification tests and the DICOM port's.
export const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
export const RLE_LOSSLESS = '1.2.840.10008.1.2.5';
export const STUDY = '1.2.826.0.1.3680043.8.1055.1.20240315.88';
export const SERIES = `${STUDY}.2`;
/** A de-identification profile (the gateway's DeidentificationProfileInput) that masks burned-in annotation in the top-left corner. */
export const MASK = { burnedInAnnotation: { policy: 'mask' as const, regions: [{ x: 0, y: 0, width: 4, height: 4 }] } };

/** A PHI-laden run in `directory` compressed by DCMTK (dcmcjpeg: JPEG Lossless SV1; dcmcrle: RLE Lossless). */
export async function compressedRun(directory: string, name: string, tool: 'dcmcjpeg' | 'dcmcrle', seed: number, burnedIn = false): Promise<string> {
  const native = join(directory, `${name}.native.dcm`);
  const file = join(directory, `${name}.dcm`);
  await writeFile(native, phiRun({ seed, studyInstanceUid: STUDY, seriesInstanceUid: `${SERIES}.${seed}`, sopInstanceUid: `${SERIES}.${seed}.1`, burnedIn }));
  await exec(tool, [native, file]);
  return file;
}

/** The transfer syntax and the raw Pixel Data element (offset table and fragments) of a Part 10 object. */
export function pixelElement(bytes: Buffer): { syntax: string | undefined; fragments: number; raw: Buffer } {
  const ds = parseDataSet(bytes);
  const element = ds.elements.x7fe00010;
  if (element === undefined) throw new Error('no pixel data');
  // Explicit VR: tag, VR, reserved, undefined length precede the items.
  return { syntax: ds.string('x00020010'), fragments: element.fragments?.length ?? 0, raw: bytes.subarray(element.dataOffset - 12) };
}
