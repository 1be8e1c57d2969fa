/** Conversions between the SDK's Tensor and batch splitting along the first (frame) axis. */
import { ArteriaError } from '@arteria/protocol';
import type { Tensor, TensorType } from '@arteria/sdk';

export const TENSOR_TYPES: readonly TensorType[] = ['float32', 'uint8', 'int64'];

export function isTensorType(value: string): value is TensorType {
  return (TENSOR_TYPES as readonly string[]).includes(value);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function checkTensor(t: Tensor): void {
  const expected = elementCount(t.dims);
  if (t.data.length !== expected) {
    throw new ArteriaError('INFERENCE_FAILED', `tensor ${t.name}: ${String(t.data.length)} values for dims [${t.dims.join(', ')}]`);
  }
}

/** Rows [start, end) of the first axis, sharing the tensor's memory. */
export function sliceRows(t: Tensor, start: number, end: number): Tensor {
  const row = elementCount(t.dims.slice(1));
  const data = t.data.subarray(start * row, end * row);
  return { name: t.name, type: t.type, dims: [end - start, ...t.dims.slice(1)], data };
}

function allocate(type: TensorType, length: number): Tensor['data'] {
  switch (type) {
    case 'float32':
      return new Float32Array(length);
    case 'uint8':
      return new Uint8Array(length);
    case 'int64':
      return new BigInt64Array(length);
  }
}

/** Joins same-named tensors along the first axis (the inverse of sliceRows). */
export function concatRows(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (!first) throw new ArteriaError('INTERNAL', 'no tensors to join');
  if (parts.length === 1) return first;
  const rows = parts.reduce((n, p) => n + (p.dims[0] ?? 0), 0);
  const data = allocate(first.type, parts.reduce((n, p) => n + p.data.length, 0));
  let offset = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, offset);
    offset += p.data.length;
  }
  return { name: first.name, type: first.type, dims: [rows, ...first.dims.slice(1)], data };
}
