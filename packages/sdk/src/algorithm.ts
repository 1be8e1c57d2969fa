import type { FrameStack, DicomHeader } from '@arteria/dicom';
import type { InferenceBackend } from './inference.js';

export interface RunInput {
  frames: FrameStack;
  header: DicomHeader;
}

export interface AlgorithmContext {
  signal: AbortSignal;
  /** Present for `onnx` runtime algorithms. */
  inference?: InferenceBackend;
}

/** What an algorithm module exports as default. Output must match the manifest's outputSchema. */
export interface Algorithm<Output = unknown> {
  run(input: RunInput, context: AlgorithmContext): Promise<Output> | Output;
}

/** Identity helper that gives an algorithm module its types. */
export function defineAlgorithm<Output>(algorithm: Algorithm<Output>): Algorithm<Output> {
  return algorithm;
}
