export { AlgorithmManifest } from './manifest.js';
export { defineAlgorithm, type Algorithm, type AlgorithmContext, type RunInput } from './algorithm.js';
export type { InferenceBackend, ModelRef, ModelDescription, Tensor, TensorType } from './inference.js';
export type { FrameStack, DicomHeader } from '@arteria/dicom';
export { runAlgorithmOnDicom, type RunOnDicomOptions } from './harness.js';
