import { ArteriaError } from '@arteria/protocol';
import { EXPLICIT_VR_LITTLE_ENDIAN } from './transfer-syntax.js';
import { encodePart10 } from './part10-write.js';
import { ARTERIA_UID_ROOT, newUid } from './uid.js';

export const XA_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.12.1';
const IMPLEMENTATION_CLASS_UID = `${ARTERIA_UID_ROOT}.1`;
const IMPLEMENTATION_VERSION_NAME = 'ARTERIA_0_1';
/** (0018,1063) Frame Time, as the AT value of Frame Increment Pointer. */
const FRAME_TIME_TAG = 0x00181063;

export interface PatientFields {
  /** DICOM person name, e.g. "Doe^Jane". */
  name?: string;
  id?: string;
  /** YYYYMMDD. */
  birthDate?: string;
  /** M, F or O. */
  sex?: string;
}

export interface XaRunOptions {
  rows: number;
  columns: number;
  frames: number;
  /** rows*columns*frames samples, frame-major; a Uint8Array gives BitsAllocated 8, a Uint16Array 16. */
  pixels: Uint8Array | Uint16Array;
  bitsStored: number;
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  frameTimeMs: number;
  patient?: PatientFields;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  /** YYYYMMDD; defaults to today (UTC). */
  studyDate?: string;
  /** HHMMSS; defaults to now (UTC). */
  studyTime?: string;
  manufacturer?: string;
  windowCenter?: number;
  windowWidth?: number;
  /** Declares de-identification: this De-identification Method, with Patient Identity Removed YES. Absent: declares none. */
  deidentificationMethod?: string;
}

/** What synthetic runs declare: their patient fields are made up, they hold no one's data. */
export const SYNTHETIC_DEIDENTIFICATION = 'Synthetic run: no patient data';

/**
 * Writes a multi-frame X-Ray Angiographic Image Storage Part 10 file (Explicit VR Little
 * Endian, native pixels): what a C-arm sends at the end of a run.
 */
export function writeXaRun(options: XaRunOptions): Buffer {
  const { rows, columns, frames, pixels, bitsStored, frameTimeMs } = options;
  const bitsAllocated = pixels instanceof Uint8Array ? 8 : 16;
  check(Number.isInteger(rows) && rows >= 1 && rows <= 65535, `rows must be an integer in 1..65535, got ${rows}`);
  check(Number.isInteger(columns) && columns >= 1 && columns <= 65535, `columns must be an integer in 1..65535, got ${columns}`);
  check(Number.isInteger(frames) && frames >= 1, `frames must be a positive integer, got ${frames}`);
  check(pixels.length === rows * columns * frames, `pixels holds ${pixels.length} samples; rows*columns*frames = ${rows * columns * frames}`);
  check(Number.isInteger(bitsStored) && bitsStored >= 1 && bitsStored <= bitsAllocated, `bitsStored ${bitsStored} does not fit ${bitsAllocated}-bit pixels`);
  check(Number.isFinite(frameTimeMs) && frameTimeMs > 0, `frameTimeMs must be > 0, got ${frameTimeMs}`);

  const now = new Date().toISOString();
  const studyDate = options.studyDate ?? now.slice(0, 10).replaceAll('-', '');
  const studyTime = options.studyTime ?? now.slice(11, 19).replaceAll(':', '');
  const sopInstanceUid = options.sopInstanceUid ?? newUid();
  const maxValue = 2 ** bitsStored;
  const patient = options.patient ?? {};

  const dataset = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['ORIGINAL', 'PRIMARY', 'SINGLE PLANE'],
    SOPClassUID: XA_IMAGE_STORAGE,
    SOPInstanceUID: sopInstanceUid,
    StudyDate: studyDate,
    SeriesDate: studyDate,
    ContentDate: studyDate,
    StudyTime: studyTime,
    SeriesTime: studyTime,
    ContentTime: studyTime,
    AccessionNumber: '',
    Modality: 'XA',
    Manufacturer: options.manufacturer ?? 'Arteria',
    ReferringPhysicianName: '',
    PatientName: patient.name ?? '',
    PatientID: patient.id ?? '',
    PatientBirthDate: patient.birthDate ?? '',
    PatientSex: patient.sex ?? '',
    ...declaredDeidentification(options),
    CineRate: Math.round(1000 / frameTimeMs),
    Laterality: '',
    KVP: '',
    XRayTubeCurrent: '',
    ExposureTime: '',
    Exposure: '',
    RadiationSetting: 'GR',
    FrameTime: Number(frameTimeMs.toFixed(3)),
    PositionerMotion: 'STATIC',
    PositionerPrimaryAngle: '',
    PositionerSecondaryAngle: '',
    StudyInstanceUID: options.studyInstanceUid ?? newUid(),
    SeriesInstanceUID: options.seriesInstanceUid ?? newUid(),
    StudyID: '',
    SeriesNumber: 1,
    InstanceNumber: 1,
    PatientOrientation: '',
    SamplesPerPixel: 1,
    PhotometricInterpretation: options.photometric ?? 'MONOCHROME2',
    NumberOfFrames: frames,
    FrameIncrementPointer: FRAME_TIME_TAG,
    Rows: rows,
    Columns: columns,
    BitsAllocated: bitsAllocated,
    BitsStored: bitsStored,
    HighBit: bitsStored - 1,
    PixelRepresentation: 0,
    WindowCenter: options.windowCenter ?? maxValue / 2,
    WindowWidth: options.windowWidth ?? maxValue,
    LossyImageCompression: '00',
    PixelIntensityRelationship: 'LIN',
    PixelData: [evenLengthCopy(pixels)],
    _vrMap: { PixelData: bitsAllocated === 8 ? 'OB' : 'OW' },
  };
  const meta = { sopClassUid: XA_IMAGE_STORAGE, sopInstanceUid, transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN, implementationClassUid: IMPLEMENTATION_CLASS_UID, implementationVersionName: IMPLEMENTATION_VERSION_NAME };
  return encodePart10(meta, dataset);
}

/** Pixel bytes in their own buffer, padded to an even length as DICOM requires. */
function evenLengthCopy(pixels: Uint8Array | Uint16Array): ArrayBuffer {
  const out = new Uint8Array(pixels.byteLength + (pixels.byteLength % 2));
  out.set(new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength));
  return out.buffer;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new ArteriaError('CONFIG_INVALID', message);
}

function declaredDeidentification(options: XaRunOptions): { PatientIdentityRemoved?: string; DeidentificationMethod?: string } {
  const method = options.deidentificationMethod;
  return method === undefined ? {} : { PatientIdentityRemoved: 'YES', DeidentificationMethod: method };
}

type RunGeometry = Pick<XaRunOptions, 'rows' | 'columns' | 'frames' | 'bitsStored' | 'photometric'>;

/** A synthetic run's file: `geometry`'s frames, and the fixed date, time and manufacturer that make the same options give the same bytes. */
export function writeSyntheticXaRun(geometry: RunGeometry, rest: Omit<XaRunOptions, keyof RunGeometry | 'studyDate' | 'studyTime' | 'manufacturer'>): Buffer {
  const { rows, columns, frames, bitsStored, photometric } = geometry;
  return writeXaRun({ rows, columns, frames, bitsStored, ...(photometric === undefined ? {} : { photometric }), ...rest, studyDate: '20240101', studyTime: '120000', manufacturer: 'Arteria Synthetic' });
}
