/**
 * Module the platform's algorithm runner loads in each isolated thread (its
 * `inferenceModule` option): the default export creates that thread's ONNX Runtime
 * backend. Options come from this module URL's query, so each runner configures its
 * own threads without process-wide state, e.g. `runner-backend.js?intraOpThreads=2`.
 * `executionProviders=cuda,cpu` applies only to models whose manifest asks for a GPU
 * (`resources.gpu`); the others run on the CPU.
 */
import type { InferenceBackend } from '@arteria/sdk';
import { OnnxRuntimeBackend, type OnnxRuntimeOptions } from './onnx-runtime-backend.js';

const INT_OPTIONS = ['intraOpThreads', 'interOpThreads', 'maxBatchFrames'] as const;

export function optionsFromQuery(search: URLSearchParams): OnnxRuntimeOptions {
  const options: Record<string, unknown> = {};
  for (const [key, value] of search) {
    options[key] = (INT_OPTIONS as readonly string[]).includes(key) ? Number(value) : key === 'executionProviders' ? value.split(',') : value;
  }
  // Validated (unknown keys rejected) by the backend's schema.
  return options;
}

/** The backend of one algorithm thread: the configured providers for a GPU model, the CPU for any other. */
export function backendForModel(options: OnnxRuntimeOptions, model?: { gpu?: boolean }): OnnxRuntimeBackend {
  return new OnnxRuntimeBackend(model?.gpu === true ? options : { ...options, executionProviders: ['cpu'] });
}

export default function createRunnerBackend(model?: { gpu?: boolean }): InferenceBackend {
  return backendForModel(optionsFromQuery(new URL(import.meta.url).searchParams), model);
}
