/**
 * The inference port. Algorithms that run a model ask the platform's backend for it, so
 * the same algorithm runs on ONNX Runtime in-process or on a KServe v2 server (Triton).
 */
export type TensorType = 'float32' | 'uint8' | 'int64';

export interface Tensor {
  name: string;
  type: TensorType;
  dims: readonly number[];
  data: Float32Array | Uint8Array | BigInt64Array;
}

export interface ModelRef {
  name: string;
  /** `sha256:<hex>` of the model file; backends refuse a model whose digest differs. */
  digest: string;
  /** Local path of the model file, where the backend loads from disk. */
  path?: string;
}

export interface ModelDescription {
  name: string;
  digest: string;
  inputs: readonly { name: string; type: TensorType; dims: readonly number[] }[];
  outputs: readonly { name: string; type: TensorType; dims: readonly number[] }[];
}

export interface InferenceBackend {
  readonly kind: string;
  load(model: ModelRef, signal?: AbortSignal): Promise<ModelDescription>;
  infer(model: ModelRef, inputs: readonly Tensor[], signal?: AbortSignal): Promise<Tensor[]>;
  describe(): Promise<ModelDescription[]>;
  close(): Promise<void>;
}
