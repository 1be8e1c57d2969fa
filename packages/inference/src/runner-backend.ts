/**
 * Module the platform's algorithm runner loads in each isolated thread (its
 * `inferenceModule` option): the default export creates that thread's ONNX Runtime
 * backend. Options come from this module URL's query, so each runner configures its
 * own threads without process-wide state, e.g. `runner-backend.js?intraOpThreads=2`.
 */
import type { InferenceBackend } from '@arteria/sdk';
import { OnnxRuntimeBackend, type OnnxRuntimeOptions } from './onnx-runtime-backend.js';

const INT_OPTIONS = ['intraOpThreads', 'interOpThreads', 'maxBatchFrames'] as const;

export function optionsFromQuery(search: URLSearchParams): OnnxRuntimeOptions {
  const options: Record<string, unknown> = {};
  for (const [key, value] of search) {
    options[key] = (INT_OPTIONS as readonly string[]).includes(key) ? Number(value) : value;
  }
  // Validated (unknown keys rejected) by the backend's schema.
  return options;
}

export default function createRunnerBackend(): InferenceBackend {
  return new OnnxRuntimeBackend(optionsFromQuery(new URL(import.meta.url).searchParams));
}
