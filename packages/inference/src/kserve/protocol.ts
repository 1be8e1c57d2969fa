/**
 * KServe v2 / Open Inference Protocol messages (REST), with the binary tensor data
 * extension Triton and KServe implement: the JSON header first, then raw little-endian
 * tensors, its length in the `Inference-Header-Content-Length` header.
 */
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import type { Tensor, TensorType } from '@arteria/sdk';
import { elementCount } from '../tensors.js';

export const INFERENCE_HEADER_LENGTH = 'inference-header-content-length';

const DATATYPES = { float32: 'FP32', uint8: 'UINT8', int64: 'INT64' } as const satisfies Record<TensorType, string>;
export type V2Datatype = (typeof DATATYPES)[TensorType];

export function toDatatype(type: TensorType): V2Datatype {
  return DATATYPES[type];
}

export function fromDatatype(datatype: string): TensorType | undefined {
  const entry = Object.entries(DATATYPES).find(([, d]) => d === datatype);
  return entry?.[0] as TensorType | undefined;
}

const Parameters = z.record(z.string(), z.unknown()).optional();

const TensorMetadata = z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number().int()) });
export type V2TensorMetadata = z.infer<typeof TensorMetadata>;

export const ModelMetadata = z.object({
  name: z.string(),
  versions: z.array(z.string()).optional(),
  platform: z.string(),
  inputs: z.array(TensorMetadata),
  outputs: z.array(TensorMetadata),
  /** Arteria's server reports the served file's digest here; other servers may not. */
  parameters: Parameters,
});
export type V2ModelMetadata = z.infer<typeof ModelMetadata>;

export const ServerMetadata = z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });
export type V2ServerMetadata = z.infer<typeof ServerMetadata>;

const NestedNumbers: z.ZodType<unknown[]> = z.array(z.union([z.number(), z.boolean(), z.lazy(() => NestedNumbers)]));

const RequestInput = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  datatype: z.string(),
  parameters: Parameters,
  data: NestedNumbers.optional(),
});

export const InferRequest = z.object({
  id: z.string().optional(),
  parameters: Parameters,
  inputs: z.array(RequestInput).min(1),
  outputs: z.array(z.object({ name: z.string(), parameters: Parameters })).optional(),
});
export type V2InferRequest = z.infer<typeof InferRequest>;
export type V2TensorJson = z.infer<typeof RequestInput>;

export const InferResponse = z.object({
  model_name: z.string(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  parameters: Parameters,
  outputs: z.array(RequestInput),
});
export type V2InferResponse = z.infer<typeof InferResponse>;

export const ErrorBody = z.object({ error: z.string() });

/** A tensor entry either carrying JSON data or announcing its binary size. */
export function tensorEntry(t: Tensor, binary: boolean): { entry: V2TensorJson; bytes: Uint8Array | undefined } {
  const base = { name: t.name, shape: [...t.dims], datatype: toDatatype(t.type) };
  if (binary) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    return { entry: { ...base, parameters: { binary_data_size: bytes.byteLength } }, bytes };
  }
  const data = t.data instanceof BigInt64Array ? Array.from(t.data, Number) : Array.from(t.data);
  return { entry: { ...base, data }, bytes: undefined };
}

function flatten(data: unknown[]): number[] {
  return (data.flat(Infinity) as (number | boolean)[]).map(Number);
}

/**
 * Builds a Tensor from an entry, taking its bytes from `binary` (advancing `cursor`) when
 * the entry announces binary_data_size. `code` is the error code a malformed entry gets.
 */
export function tensorFromEntry(
  entry: V2TensorJson,
  binary: Uint8Array | undefined,
  cursor: { offset: number },
  code: 'INFERENCE_FAILED',
): Tensor {
  const type = fromDatatype(entry.datatype);
  if (type === undefined) throw new ArteriaError(code, `tensor ${entry.name}: datatype ${entry.datatype} is not supported (FP32, UINT8, INT64)`);
  const count = elementCount(entry.shape);
  const size = entry.parameters?.binary_data_size;
  if (size !== undefined) {
    const itemBytes = type === 'float32' ? 4 : type === 'int64' ? 8 : 1;
    if (typeof size !== 'number' || size !== count * itemBytes) {
      throw new ArteriaError(code, `tensor ${entry.name}: binary_data_size ${JSON.stringify(size)} does not fit shape [${entry.shape.join(', ')}] of ${entry.datatype}`);
    }
    if (!binary || cursor.offset + size > binary.byteLength) throw new ArteriaError(code, `tensor ${entry.name}: the body ends before its ${size} bytes`);
    // Copy into an aligned buffer: the body offset need not be a multiple of the element size.
    const bytes = new Uint8Array(size);
    bytes.set(binary.subarray(cursor.offset, cursor.offset + size));
    cursor.offset += size;
    const data = type === 'float32' ? new Float32Array(bytes.buffer) : type === 'int64' ? new BigInt64Array(bytes.buffer) : bytes;
    return { name: entry.name, type, dims: entry.shape, data };
  }
  if (entry.data === undefined) throw new ArteriaError(code, `tensor ${entry.name} has neither data nor binary_data_size`);
  const values = flatten(entry.data);
  if (values.length !== count) throw new ArteriaError(code, `tensor ${entry.name}: ${values.length} values for shape [${entry.shape.join(', ')}]`);
  const data = type === 'float32' ? Float32Array.from(values) : type === 'int64' ? BigInt64Array.from(values, (v) => BigInt(Math.trunc(v))) : Uint8Array.from(values);
  return { name: entry.name, type, dims: entry.shape, data };
}

/** JSON header plus binary tensors, as one body, and the header length to announce. */
export function encodeBody(json: unknown, binaries: readonly Uint8Array[]): { body: Buffer; headerLength: number | undefined } {
  const header = Buffer.from(JSON.stringify(json), 'utf8');
  if (binaries.length === 0) return { body: header, headerLength: undefined };
  return { body: Buffer.concat([header, ...binaries]), headerLength: header.byteLength };
}

/** Splits a body into its JSON header and the binary part that follows. */
export function splitBody(body: Uint8Array, headerLength: string | null | undefined, code: 'INFERENCE_FAILED' | 'INFERENCE_UNAVAILABLE'): { json: unknown; binary: Uint8Array | undefined } {
  let jsonBytes = body;
  let binary: Uint8Array | undefined;
  if (headerLength !== undefined && headerLength !== null && headerLength !== '') {
    const n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.byteLength) throw new ArteriaError(code, `Inference-Header-Content-Length ${headerLength} does not fit a ${body.byteLength}-byte body`);
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  try {
    return { json: JSON.parse(Buffer.from(jsonBytes.buffer, jsonBytes.byteOffset, jsonBytes.byteLength).toString('utf8')) as unknown, binary };
  } catch (err) {
    throw new ArteriaError(code, 'the inference message is not valid JSON', { cause: err });
  }
}
