import { ARTERIA_UID_ROOT, encodePart10, EXPLICIT_VR_LITTLE_ENDIAN, newUid, SYNTHETIC_DEIDENTIFICATION } from '@arteria/dicom';

const TRUE_COLOR_SC = '1.2.840.10008.5.1.4.1.1.7.4';

export interface ColorRunOptions {
  rows: number;
  columns: number;
  frames: number;
  /** R, G, B of pixel `p` (row-major) of frame `f`, each 0-255. */
  rgb: (f: number, p: number) => [number, number, number];
  frameTimeMs?: number;
  /** Burned In Annotation (0028,0301); default NO (a synthetic capture shows no name). */
  burnedInAnnotation?: 'YES' | 'NO' | 'absent';
}

/**
 * A Multi-frame True Color Secondary Capture run, native RGB, color-by-pixel: what a video
 * capture of a cath lab's monitor stores. DCMTK's tools make the other encodings of it.
 */
export function writeColorRun(options: ColorRunOptions): Buffer {
  const { rows, columns, frames } = options;
  const pixels = new Uint8Array(rows * columns * frames * 3);
  for (let f = 0; f < frames; f++) {
    for (let p = 0; p < rows * columns; p++) pixels.set(options.rgb(f, p), (f * rows * columns + p) * 3);
  }
  const sopInstanceUid = newUid();
  const frameTimeMs = options.frameTimeMs ?? 1000 / 15;
  const dataset = {
    SOPClassUID: TRUE_COLOR_SC,
    SOPInstanceUID: sopInstanceUid,
    StudyInstanceUID: newUid(),
    SeriesInstanceUID: newUid(),
    StudyDate: '20240101',
    StudyTime: '120000',
    Modality: 'XA',
    ConversionType: 'DV',
    ...(options.burnedInAnnotation === 'absent' ? {} : { BurnedInAnnotation: options.burnedInAnnotation ?? 'NO' }),
    PatientName: '',
    PatientID: '',
    // Synthetic, so nobody to identify: declared as the synthetic XA runs declare it.
    PatientIdentityRemoved: 'YES',
    DeidentificationMethod: SYNTHETIC_DEIDENTIFICATION,
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'RGB',
    PlanarConfiguration: 0,
    NumberOfFrames: frames,
    FrameTime: Number(frameTimeMs.toFixed(3)),
    FrameIncrementPointer: 0x00181063,
    Rows: rows,
    Columns: columns,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    PixelData: [pixels.buffer.slice(0, pixels.length + (pixels.length % 2))],
    _vrMap: { PixelData: 'OB' },
  };
  return encodePart10({ sopClassUid: TRUE_COLOR_SC, sopInstanceUid, transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN, implementationClassUid: `${ARTERIA_UID_ROOT}.99`, implementationVersionName: 'ARTERIA_TEST' }, dataset);
}
