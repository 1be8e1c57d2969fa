export { parserReason, PIXEL_DATA_TAG } from './part10.js';
export type { DicomHeader, FrameStack, FrameLayout, FrameBatch } from './types.js';
export { COLOR_PHOTOMETRICS, luminance } from './color.js';
export { readHeader, readHeaderFromFile, assertMultiFrameRun, isColor, DEFAULT_MAX_HEADER_BYTES, type ReadHeaderFromFileOptions } from './header.js';
export { decodeFrames, decodeRun, DEFAULT_FRAME_TIME_MS, DEFAULT_MAX_DECODED_BYTES, type DecodeOptions } from './decode.js';
export { inflateBounded, boundedInflater, DEFAULT_MAX_INFLATED_BYTES, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN } from './inflate.js';
export { openFrameStream, readWhole, DEFAULT_BATCH_BYTES, type FrameStreamOptions, type OpenedRun } from './stream-decode.js';
export { stackBatches, batchStack, collectFrames } from './frame-batches.js';
export { loadPixelCodecs, type PixelCodecs, type CodecFamily, type FrameGeometry } from './pixel-codecs.js';
export {
  IMPLICIT_VR_LITTLE_ENDIAN,
  EXPLICIT_VR_LITTLE_ENDIAN,
  JPEG_BASELINE,
  JPEG_EXTENDED,
  JPEG_LOSSLESS,
  JPEG_LOSSLESS_SV1,
  JPEG_LS_LOSSLESS,
  JPEG_LS_NEAR_LOSSLESS,
  RLE_LOSSLESS,
  JPEG_2000_LOSSLESS,
  JPEG_2000,
  HTJ2K_LOSSLESS,
  HTJ2K_LOSSLESS_RPCL,
  HTJ2K,
  DECODABLE_TRANSFER_SYNTAXES,
  NATIVE_TRANSFER_SYNTAXES,
  describeTransferSyntax,
} from './transfer-syntax.js';
export { encapsulateFrames, type EncapsulateOptions } from './encapsulate.js';
export { encodePart10, type Part10Meta } from './part10-write.js';
export { forEachPixelInDisc } from './raster.js';
export { writeSyntheticXaRun, writeXaRun, SYNTHETIC_DEIDENTIFICATION, XA_IMAGE_STORAGE, type XaRunOptions, type PatientFields } from './write.js';
export { synthesizeXaRun, type SynthesizeOptions, type ContrastPhases, type RunTruth } from './synthesize.js';
export { newUid, ARTERIA_UID_ROOT } from './uid.js';
export { mulberry32, uniform } from './prng.js';
export { ACCEPTED_STORAGE_CLASSES, ACCEPTED_TRANSFER_SYNTAXES, ENCAPSULATED_TRANSFER_SYNTAXES, VERIFICATION_SOP_CLASS } from './sop-classes.js';
export { readSegmentedHeader, segmentFrames, type SegmentedRunHeader } from './segmented-header.js';
export { parseDataSet, newerVrElements, relabel, visitHeaderElements, type ElementHeader } from './newer-vrs.js';
export { putSeriesInstances, seriesInstancesIn, SERIES_INSTANCES_CREATOR, type InstanceReference } from './series-instances.js';
export { seriesFrameOf, orderSeriesFrames, seriesFrameTimeMs, seriesRunHeader, seriesFragmentItems, type SeriesFrame, type ByteSpan } from './series-frames.js';
