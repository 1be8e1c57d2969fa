export type { DicomHeader, FrameStack } from './types.js';
export { readHeader, readHeaderFromFile, assertMultiFrameRun, DEFAULT_MAX_HEADER_BYTES, type ReadHeaderFromFileOptions } from './header.js';
export { decodeFrames, DEFAULT_FRAME_TIME_MS } from './decode.js';
export { IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, describeTransferSyntax } from './transfer-syntax.js';
export { writeXaRun, XA_IMAGE_STORAGE, type XaRunOptions, type PatientFields } from './write.js';
export { synthesizeXaRun, type SynthesizeOptions, type ContrastPhases, type RunTruth } from './synthesize.js';
export { newUid, ARTERIA_UID_ROOT } from './uid.js';
export { mulberry32, uniform } from './prng.js';
