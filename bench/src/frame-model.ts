/**
 * The benchmark's frame model: a small CNN over whole frames (two strided 3x3
 * convolutions, pooling, a linear head), written with Arteria's ONNX writer. Its cost per
 * frame is that of a light real-time frame classifier, so the benchmark weighs the
 * platform's overhead against realistic model work.
 */
import { writeOnnxModel, type OnnxInitializer, type OnnxNode } from '@arteria/inference';
import { mulberry32 } from '@arteria/dicom';

export interface FrameCnnShape {
  /** Channels of the two strided convolutions. */
  widths: readonly [number, number];
  /** Extra 3x3 convolutions at the second stage's resolution. */
  extraLayers: number;
}

/**
 * Light: ~85 M multiply-adds per 512x512 frame. Standard: ~0.5 G, a typical small real-time
 * frame CNN. Heavy: ~1.3 G, for the sweep of the ratio against model cost. (Below light, the
 * cost per frame is no longer the model's: converting and copying the frames dominates, and
 * the raw rate swings with memory bandwidth.)
 */
export const FRAME_CNN_SHAPES: Readonly<Record<'light' | 'standard' | 'heavy', FrameCnnShape>> = {
  light: { widths: [16, 32], extraLayers: 0 },
  standard: { widths: [24, 48], extraLayers: 1 },
  heavy: { widths: [32, 64], extraLayers: 2 },
};

export function frameCnn(shape: FrameCnnShape, seed = 1): Uint8Array {
  const rand = mulberry32(seed);
  const weights = (n: number, scale: number): Float32Array => Float32Array.from({ length: n }, () => (rand() - 0.5) * scale);
  const [c1, c2] = shape.widths;
  const conv = (input: string, output: string, w: string, b: string, stride: number): OnnxNode => ({
    opType: 'Conv',
    inputs: [input, w, b],
    outputs: [output],
    attributes: { strides: { type: 'ints', value: [stride, stride] }, pads: { type: 'ints', value: [1, 1, 1, 1] } },
  });
  const initializers: OnnxInitializer[] = [
    { name: 'w1', type: 'float32', dims: [c1, 1, 3, 3], data: weights(c1 * 9, 0.6) },
    { name: 'b1', type: 'float32', dims: [c1], data: weights(c1, 0.1) },
    { name: 'w2', type: 'float32', dims: [c2, c1, 3, 3], data: weights(c2 * c1 * 9, 0.3) },
    { name: 'b2', type: 'float32', dims: [c2], data: weights(c2, 0.1) },
    { name: 'fc', type: 'float32', dims: [c2, 2], data: weights(c2 * 2, 1) },
    { name: 'fb', type: 'float32', dims: [2], data: weights(2, 0.1) },
  ];
  const nodes: OnnxNode[] = [
    conv('frames', 'x1', 'w1', 'b1', 2),
    { opType: 'Relu', inputs: ['x1'], outputs: ['r1'] },
    conv('r1', 'x2', 'w2', 'b2', 2),
    { opType: 'Relu', inputs: ['x2'], outputs: ['h0'] },
  ];
  for (let i = 0; i < shape.extraLayers; i++) {
    initializers.push({ name: `we${i}`, type: 'float32', dims: [c2, c2, 3, 3], data: weights(c2 * c2 * 9, 0.2) });
    initializers.push({ name: `be${i}`, type: 'float32', dims: [c2], data: weights(c2, 0.1) });
    nodes.push(conv(`h${i}`, `xe${i}`, `we${i}`, `be${i}`, 1), { opType: 'Relu', inputs: [`xe${i}`], outputs: [`h${i + 1}`] });
  }
  nodes.push(
    { opType: 'GlobalAveragePool', inputs: [`h${shape.extraLayers}`], outputs: ['pooled'] },
    { opType: 'Flatten', inputs: ['pooled'], outputs: ['flat'], attributes: { axis: { type: 'int', value: 1 } } },
    { opType: 'Gemm', inputs: ['flat', 'fc', 'fb'], outputs: ['scores'] },
  );
  return writeOnnxModel({
    inputs: [{ name: 'frames', type: 'float32', dims: ['batch', 1, 'height', 'width'] }],
    outputs: [{ name: 'scores', type: 'float32', dims: ['batch', 2] }],
    initializers,
    nodes,
  });
}

/** Frames as the model takes them: float32 in [0, 1], [n, 1, rows, columns]. */
export function toModelInput(pixels: Uint8Array | Uint16Array, maxValue: number): Float32Array {
  const out = new Float32Array(pixels.length);
  const scale = 1 / maxValue;
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] ?? 0) * scale;
  return out;
}
