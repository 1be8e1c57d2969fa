export { writeOnnxModel } from './onnx/write-model.js';
export type {
  OnnxAttribute,
  OnnxElementType,
  OnnxInitializer,
  OnnxModelSpec,
  OnnxNode,
  OnnxTensorData,
  OnnxValueInfo,
} from './onnx/write-model.js';
export { OnnxRuntimeBackend, OnnxRuntimeOptions } from './onnx-runtime-backend.js';
export { sha256Digest, readVerifiedModel } from './model-digest.js';
export { concatRows, sliceRows } from './tensors.js';
export { KServeV2Backend, KServeV2Options } from './kserve/client.js';
export { KServeModelServer, type ModelServerOptions } from './kserve/server.js';
export { parseModelConfig, writeModelConfig, type TritonModelConfig, type TritonTensorConfig } from './kserve/model-config.js';
export { readModelRepository, type RepositoryModel } from './kserve/model-repository.js';
export type { V2ModelMetadata, V2ServerMetadata } from './kserve/protocol.js';
export { exportModelRepository, type ExportedModel } from './kserve/export-repository.js';
