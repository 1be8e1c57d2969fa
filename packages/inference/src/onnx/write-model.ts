/**
 * Writes an ONNX model (opset >= 13) from a plain description, so models trained in
 * TypeScript ship as standard `.onnx` files that ONNX Runtime, Triton and KServe load.
 */
import { ArteriaError } from '@arteria/protocol';
import { ONNX_ATTRIBUTE_TYPE, ONNX_DATA_TYPE, onnxModelType } from './onnx-schema.js';

export type OnnxElementType = keyof typeof ONNX_DATA_TYPE;

/** A graph input or output; a string dim is symbolic (for example `'batch'`). */
export interface OnnxValueInfo {
  name: string;
  type: OnnxElementType;
  dims: readonly (number | string)[];
}

export type OnnxTensorData =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Int32Array
  | BigInt64Array;

/** A constant tensor (weights); data is stored as little-endian raw bytes. */
export interface OnnxInitializer {
  name: string;
  type: OnnxElementType;
  dims: readonly number[];
  data: OnnxTensorData;
}

export type OnnxAttribute =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'strings'; value: readonly string[] }
  | { type: 'tensor'; value: OnnxInitializer };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  /** Empty (the default) is the standard ai.onnx domain. */
  domain?: string;
  attributes?: Readonly<Record<string, OnnxAttribute>>;
}

export interface OnnxModelSpec {
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  nodes: readonly OnnxNode[];
  initializers?: readonly OnnxInitializer[];
  /** ai.onnx opset version, 13 to 21; default 17. */
  opset?: number;
  graphName?: string;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Free key/value metadata stored in the model (for example the training seed). */
  metadata?: Readonly<Record<string, string>>;
}

/** IR version released with each opset range (onnx/docs/Versioning.md). */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function elementBytes(data: OnnxTensorData): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // raw_data is little-endian by spec; Node on x64/arm64 is little-endian, so a copy suffices.
  return new Uint8Array(bytes);
}

const ARRAY_FOR_TYPE: Record<OnnxElementType, string> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  uint8: 'Uint8Array',
  int8: 'Int8Array',
  uint16: 'Uint16Array',
  int16: 'Int16Array',
  int32: 'Int32Array',
  int64: 'BigInt64Array',
  bool: 'Uint8Array',
};

function tensorMessage(t: OnnxInitializer): Record<string, unknown> {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) {
    throw new ArteriaError(
      'CONFIG_INVALID',
      `initializer ${t.name}: ${String(t.data.length)} values for dims [${t.dims.join(', ')}] (${String(count)})`,
    );
  }
  if (t.data.constructor.name !== ARRAY_FOR_TYPE[t.type]) {
    throw new ArteriaError(
      'CONFIG_INVALID',
      `initializer ${t.name}: type ${t.type} needs a ${ARRAY_FOR_TYPE[t.type]}, got ${t.data.constructor.name}`,
    );
  }
  return { name: t.name, dims: [...t.dims], dataType: ONNX_DATA_TYPE[t.type], rawData: elementBytes(t.data) };
}

function valueInfoMessage(v: OnnxValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DATA_TYPE[v.type],
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeMessage(name: string, a: OnnxAttribute): Record<string, unknown> {
  const type = ONNX_ATTRIBUTE_TYPE[a.type];
  switch (a.type) {
    case 'int':
      return { name, type, i: a.value };
    case 'float':
      return { name, type, f: a.value };
    case 'string':
      return { name, type, s: Buffer.from(a.value, 'utf8') };
    case 'ints':
      return { name, type, ints: [...a.value] };
    case 'floats':
      return { name, type, floats: [...a.value] };
    case 'strings':
      return { name, type, strings: a.value.map((s) => Buffer.from(s, 'utf8')) };
    case 'tensor':
      return { name, type, t: tensorMessage(a.value) };
  }
}

/** Serializes the model to ONNX protobuf bytes (the content of a `.onnx` file). */
export function writeOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const opset = spec.opset ?? 17;
  if (!Number.isInteger(opset) || opset < 13 || opset > 21) {
    throw new ArteriaError('CONFIG_INVALID', `ONNX opset must be 13 to 21, got ${String(opset)}`);
  }
  const ModelProto = onnxModelType();
  const message = {
    irVersion: irVersionFor(opset),
    producerName: spec.producerName ?? 'arteria',
    producerVersion: spec.producerVersion ?? '0.1.0',
    docString: spec.docString ?? '',
    opsetImport: [{ domain: '', version: opset }],
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: spec.graphName ?? 'main',
      input: spec.inputs.map(valueInfoMessage),
      output: spec.outputs.map(valueInfoMessage),
      initializer: (spec.initializers ?? []).map(tensorMessage),
      node: spec.nodes.map((n, index) => ({
        name: n.name ?? `${n.opType}_${String(index)}`,
        opType: n.opType,
        domain: n.domain ?? '',
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attributes ?? {}).map(([k, a]) => attributeMessage(k, a)),
      })),
    },
  };
  const invalid = ModelProto.verify(message);
  if (invalid !== null) throw new ArteriaError('CONFIG_INVALID', `ONNX model: ${invalid}`);
  return ModelProto.encode(ModelProto.fromObject(message)).finish();
}
