/** What Arteria needs to know about a DICOM run without touching its pixels. */
export interface DicomHeader {
  transferSyntaxUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality: string;
  rows: number;
  columns: number;
  numberOfFrames: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  /** Planar Configuration (0028,0006) of color pixels: 0 interleaved, 1 one plane per sample; 0 when absent. */
  planarConfiguration: number;
  /** Milliseconds between frames (Frame Time, Frame Time Vector, Cine Rate, the per-frame acquisition times of an enhanced object, or Recommended Display Frame Rate); undefined when none says. */
  frameTimeMs: number | undefined;
  windowCenter: number | undefined;
  windowWidth: number | undefined;
  /** Whether the top-level data set has a Pixel Data (7FE0,0010) element. */
  hasPixelData: boolean;
  /** Patient Identity Removed (0012,0062): `YES`, `NO`, or '' when absent. */
  patientIdentityRemoved: string;
  /** De-identification Method (0012,0063), or a note that only its code sequence (0012,0064) is there; '' when neither is. */
  deidentificationMethod: string;
}

/** Decoded frames of one run, frame-major, one sample per pixel. */
export interface FrameStack {
  rows: number;
  columns: number;
  frameCount: number;
  bitsStored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  /** Milliseconds between frames (defaults to 1000/15 when the file does not say). */
  frameTimeMs: number;
  /** rows*columns*frameCount samples; frame f starts at f*rows*columns. */
  pixels: Uint8Array | Uint16Array;
}

/** A run's frame geometry without its pixels: what is known once its header is read. */
export type FrameLayout = Omit<FrameStack, 'pixels'>;

/** Consecutive frames of a run, as they arrive from a stream. */
export interface FrameBatch {
  /** Index of the batch's first frame in the run. */
  firstFrame: number;
  frameCount: number;
  /** rows*columns*frameCount samples; frame firstFrame+i starts at i*rows*columns. */
  pixels: Uint8Array | Uint16Array;
}
