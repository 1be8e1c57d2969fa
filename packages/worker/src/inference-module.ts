import { ArteriaError } from '@arteria/protocol';

/**
 * Where the algorithm runner's threads find their inference backend (@arteria/inference):
 * ONNX Runtime in-process, or a KServe v2 client for Triton / KServe. Only the module's
 * address is resolved here; the backend is loaded inside the threads of algorithms that
 * have a model, never by the platform itself.
 */
export interface OnnxRuntimeModuleOptions {
  /** Threads one ONNX operator may use in each algorithm thread. Default 1. */
  intraOpThreads?: number;
  /** Largest frame batch per model call; 0 (default) sends all frames of a run at once. */
  maxBatchFrames?: number;
  /** ONNX Runtime execution providers in order, for models whose manifest asks for a GPU; default cpu. */
  executionProviders?: readonly string[];
}

export function onnxRuntimeModuleUrl(options: OnnxRuntimeModuleOptions = {}): string {
  const url = new URL(import.meta.resolve('@arteria/inference/runner-backend'));
  if (options.intraOpThreads !== undefined) url.searchParams.set('intraOpThreads', String(options.intraOpThreads));
  if (options.maxBatchFrames !== undefined) url.searchParams.set('maxBatchFrames', String(options.maxBatchFrames));
  if (options.executionProviders !== undefined) url.searchParams.set('executionProviders', options.executionProviders.join(','));
  return url.href;
}

export interface KServeModuleOptions {
  /** Base URL of the KServe v2 server, e.g. http://triton:8000. */
  url: string;
  timeoutMs?: number;
  /** Send tensors as raw bytes (binary tensor data extension). Default true. */
  binary?: boolean;
  /** Refuse servers that do not report the model's digest (Triton does not). Default false. */
  requireDigest?: boolean;
  /** Largest frame batch per request: set it to the model's max_batch_size on Triton. */
  maxBatchFrames?: number;
}

export function kserveModuleUrl(options: KServeModuleOptions): string {
  const url = new URL(import.meta.resolve('@arteria/inference/kserve-runner-backend'));
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.href;
}

/** The runner module for a cluster's `inference` configuration. */
export function inferenceModuleUrl(config: { backend: 'onnxruntime' | 'kserve-v2'; url: string; intraOpThreads: number; maxBatchFrames: number; requireDigest: boolean; executionProviders: readonly string[] }): string {
  if (config.backend === 'onnxruntime') return onnxRuntimeModuleUrl({ intraOpThreads: config.intraOpThreads, maxBatchFrames: config.maxBatchFrames, executionProviders: config.executionProviders });
  if (!/^https?:\/\//.test(config.url)) throw new ArteriaError('CONFIG_INVALID', `inference.url must be the KServe v2 server's http(s) URL when inference.backend is kserve-v2, got ${JSON.stringify(config.url)}`);
  return kserveModuleUrl({ url: config.url, requireDigest: config.requireDigest, ...(config.maxBatchFrames > 0 ? { maxBatchFrames: config.maxBatchFrames } : {}) });
}
