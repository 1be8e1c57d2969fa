export { AlgorithmManifest } from './manifest.js';
export { defineAlgorithm, type Algorithm, type AlgorithmContext, type RunInput, type StreamInput } from './algorithm.js';
export type { InferenceBackend, ModelRef, ModelDescription, Tensor, TensorType } from './inference.js';
export type { FrameStack, FrameLayout, FrameBatch, DicomHeader } from '@arteria/dicom';
export { stackBatches, batchStack, collectFrames } from '@arteria/dicom';
export { runAlgorithmOnDicom, streamAlgorithmOnDicom, type RunOnDicomOptions, type StreamOnDicomOptions } from './harness.js';
export {
  encodeState,
  decodeState,
  streamLayoutOf,
  assertNextSegment,
  type IncrementalAlgorithm,
  type IncrementalStart,
  type StreamLayout,
  type FrameSegment,
  type PartialEvent,
} from './incremental.js';
export { incrementalAlgorithmOnDicom, checkIncremental, type IncrementalOnDicomOptions, type IncrementalRun } from './incremental-harness.js';
