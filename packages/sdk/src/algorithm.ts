import type { DicomHeader, FrameBatch, FrameLayout, FrameStack } from '@arteria/dicom';
import type { IncrementalAlgorithm } from './incremental.js';
import type { InferenceBackend } from './inference.js';

export interface RunInput {
  frames: FrameStack;
  header: DicomHeader;
}

/**
 * A run whose frames arrive while it is still being read: its geometry up front, then its
 * frames in order, in batches. Each batch is the algorithm's to keep; one it does not keep
 * is freed, so an algorithm that folds each batch into a small state runs in memory that
 * does not grow with the run.
 */
export interface StreamInput {
  header: DicomHeader;
  frames: FrameLayout;
  batches: AsyncIterable<FrameBatch>;
}

export interface AlgorithmContext {
  signal: AbortSignal;
  /** Present for `onnx` runtime algorithms. */
  inference?: InferenceBackend;
}

/**
 * What an algorithm module exports as default. Output must match the manifest's
 * outputSchema. `runStream`, when present, is what the platform calls: frames reach it as
 * they stream from the store, so computing overlaps reading. It must give the output `run`
 * gives for the same run. Without it the platform collects the run and calls `run`.
 */
export interface Algorithm<Output = unknown> {
  run(input: RunInput, context: AlgorithmContext): Promise<Output> | Output;
  runStream?(input: StreamInput, context: AlgorithmContext): Promise<Output>;
  /**
   * The run while it is still being acquired (segmented runs, docs/protocol.md): state
   * checkpointed after every segment, events reported as soon as they are certain, and a
   * final output equal to `run`'s. Without it a segmented run is refused.
   */
  incremental?: IncrementalAlgorithm<unknown, Output>;
}

/** Identity helper that gives an algorithm module its types. */
export function defineAlgorithm<Output>(algorithm: Algorithm<Output>): Algorithm<Output> {
  return algorithm;
}
