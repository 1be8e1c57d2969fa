/** A tiny Conv -> Relu -> GlobalAveragePool -> Gemm model and a plain reference of it. */
import { writeOnnxModel } from '@arteria/inference';

const K = 3;
const C = 2; // conv output channels
const CLASSES = 2;

export function tinyClassifier(opset = 17): {
  bytes: Uint8Array;
  reference: (x: Float32Array, n: number, h: number, w: number) => number[];
} {
  const convW = new Float32Array(C * K * K).map((_, i) => ((i % 5) - 2) * 0.25);
  const convB = new Float32Array([0.1, -0.05]);
  const gemmW = new Float32Array([0.5, -1, 1.5, 0.25]); // [C, CLASSES]
  const gemmB = new Float32Array([0.01, 0.02]);
  const bytes = writeOnnxModel({
    opset,
    inputs: [{ name: 'frames', type: 'float32', dims: ['batch', 1, 'height', 'width'] }],
    outputs: [{ name: 'scores', type: 'float32', dims: ['batch', CLASSES] }],
    initializers: [
      { name: 'conv_w', type: 'float32', dims: [C, 1, K, K], data: convW },
      { name: 'conv_b', type: 'float32', dims: [C], data: convB },
      { name: 'fc_w', type: 'float32', dims: [C, CLASSES], data: gemmW },
      { name: 'fc_b', type: 'float32', dims: [CLASSES], data: gemmB },
    ],
    nodes: [
      {
        opType: 'Conv',
        inputs: ['frames', 'conv_w', 'conv_b'],
        outputs: ['conv'],
        attributes: { pads: { type: 'ints', value: [1, 1, 1, 1] }, kernel_shape: { type: 'ints', value: [K, K] } },
      },
      { opType: 'Relu', inputs: ['conv'], outputs: ['relu'] },
      { opType: 'GlobalAveragePool', inputs: ['relu'], outputs: ['pool'] },
      { opType: 'Flatten', inputs: ['pool'], outputs: ['flat'], attributes: { axis: { type: 'int', value: 1 } } },
      { opType: 'Gemm', inputs: ['flat', 'fc_w', 'fc_b'], outputs: ['scores'], attributes: { alpha: { type: 'float', value: 1 } } },
    ],
  });
  const reference = (x: Float32Array, n: number, h: number, w: number): number[] => {
    const out: number[] = [];
    for (let b = 0; b < n; b++) {
      const pooled: number[] = [];
      for (let c = 0; c < C; c++) {
        let sum = 0;
        for (let y = 0; y < h; y++) {
          for (let xx = 0; xx < w; xx++) {
            let acc = convB[c] ?? 0;
            for (let ky = 0; ky < K; ky++) {
              for (let kx = 0; kx < K; kx++) {
                const sy = y + ky - 1;
                const sx = xx + kx - 1;
                if (sy < 0 || sx < 0 || sy >= h || sx >= w) continue;
                acc += (x[b * h * w + sy * w + sx] ?? 0) * (convW[c * K * K + ky * K + kx] ?? 0);
              }
            }
            sum += Math.max(0, acc);
          }
        }
        pooled.push(sum / (h * w));
      }
      for (let k = 0; k < CLASSES; k++) {
        let acc = gemmB[k] ?? 0;
        for (let c = 0; c < C; c++) acc += (pooled[c] ?? 0) * (gemmW[c * CLASSES + k] ?? 0);
        out.push(acc);
      }
    }
    return out;
  };
  return { bytes, reference };
}
