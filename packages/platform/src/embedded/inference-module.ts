/**
 * Where the algorithm runner's threads find their inference backend: ONNX Runtime from
 * @arteria/inference. Only the module's address is resolved here; the native runtime is
 * loaded inside the threads of algorithms that have a model, never by the platform itself.
 */
export interface OnnxRuntimeModuleOptions {
  /** Threads one ONNX operator may use in each algorithm thread. Default 1. */
  intraOpThreads?: number;
  /** Largest frame batch per model call; 0 (default) sends all frames of a run at once. */
  maxBatchFrames?: number;
}

export function onnxRuntimeModuleUrl(options: OnnxRuntimeModuleOptions = {}): string {
  const url = new URL(import.meta.resolve('@arteria/inference/runner-backend'));
  if (options.intraOpThreads !== undefined) url.searchParams.set('intraOpThreads', String(options.intraOpThreads));
  if (options.maxBatchFrames !== undefined) url.searchParams.set('maxBatchFrames', String(options.maxBatchFrames));
  return url.href;
}
