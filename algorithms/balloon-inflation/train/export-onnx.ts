import { writeOnnxModel } from '@arteria/inference';
import { MODEL_INPUT, MODEL_OUTPUT, PATCH_COLUMNS, PATCH_ROWS } from '@arteria/balloon-inflation';
import type { Mlp } from './mlp.js';

/** The trained perceptron as an ONNX graph: Flatten -> Gemm -> Relu -> Gemm -> Sigmoid, batch dimension free. */
export function mlpToOnnx(m: Mlp, metadata: Record<string, string>): Uint8Array {
  return writeOnnxModel({
    opset: 17,
    graphName: 'balloon_inflation',
    producerName: 'arteria-balloon-inflation-train',
    docString: 'Probability that the balloon between two radio-opaque markers is inflated, from a marker-aligned log-attenuation patch.',
    metadata,
    inputs: [{ name: MODEL_INPUT, type: 'float32', dims: ['batch', 1, PATCH_ROWS, PATCH_COLUMNS] }],
    outputs: [{ name: MODEL_OUTPUT, type: 'float32', dims: ['batch', 1] }],
    initializers: [
      { name: 'w1', type: 'float32', dims: [m.hidden, m.inputs], data: m.w1 },
      { name: 'b1', type: 'float32', dims: [m.hidden], data: m.b1 },
      { name: 'w2', type: 'float32', dims: [1, m.hidden], data: m.w2 },
      { name: 'b2', type: 'float32', dims: [1], data: m.b2 },
    ],
    nodes: [
      { opType: 'Flatten', inputs: [MODEL_INPUT], outputs: ['flat'], attributes: { axis: { type: 'int', value: 1 } } },
      { opType: 'Gemm', inputs: ['flat', 'w1', 'b1'], outputs: ['hidden_linear'], attributes: { transB: { type: 'int', value: 1 } } },
      { opType: 'Relu', inputs: ['hidden_linear'], outputs: ['hidden'] },
      { opType: 'Gemm', inputs: ['hidden', 'w2', 'b2'], outputs: ['logit'], attributes: { transB: { type: 'int', value: 1 } } },
      { opType: 'Sigmoid', inputs: ['logit'], outputs: [MODEL_OUTPUT] },
    ],
  });
}
