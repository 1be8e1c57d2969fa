/**
 * Module the platform's algorithm runner can load in each isolated thread instead of
 * ONNX Runtime: the default export creates a KServe v2 client, so a cluster's workers send
 * their models' work to Triton, KServe or `arteria serve-models`. Options come from this
 * module URL's query, e.g. `kserve-runner-backend.js?url=http://triton:8000&maxBatchFrames=64`.
 */
import type { InferenceBackend } from '@arteria/sdk';
import { KServeV2Backend, type KServeV2Options } from './kserve/client.js';

const INT_OPTIONS = new Set(['timeoutMs', 'maxBatchFrames']);
const BOOLEAN_OPTIONS = new Set(['binary', 'requireDigest']);

export function kserveOptionsFromQuery(search: URLSearchParams): KServeV2Options {
  const options: Record<string, unknown> = {};
  for (const [key, value] of search) {
    options[key] = INT_OPTIONS.has(key) ? Number(value) : BOOLEAN_OPTIONS.has(key) ? value === 'true' : value;
  }
  // Validated (unknown keys rejected, url required) by the backend's schema.
  return options as KServeV2Options;
}

export default function createKServeRunnerBackend(): InferenceBackend {
  return new KServeV2Backend(kserveOptionsFromQuery(new URL(import.meta.url).searchParams));
}
