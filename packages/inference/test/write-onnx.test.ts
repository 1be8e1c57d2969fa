import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { writeOnnxModel } from '@arteria/inference';
import { tinyClassifier } from './tiny-model.js';

describe('writeOnnxModel', () => {
  it('writes a Conv -> Relu -> GlobalAveragePool -> Gemm model that ONNX Runtime loads and runs', async () => {
    const { bytes, reference } = tinyClassifier();
    const session = await ort.InferenceSession.create(bytes);
    try {
      expect(session.inputNames).toEqual(['frames']);
      expect(session.outputNames).toEqual(['scores']);
      const h = 8;
      const w = 8;
      const data = new Float32Array(2 * h * w).map((_, i) => Math.sin(i * 0.37));
      const out = await session.run({ frames: new ort.Tensor('float32', data, [2, 1, h, w]) });
      const scores = out.scores;
      expect(scores?.dims).toEqual([2, 2]);
      const expected = reference(data, 2, h, w);
      const got = Array.from(scores?.data as Float32Array);
      got.forEach((v, i) => expect(v).toBeCloseTo(expected[i] ?? NaN, 4));
    } finally {
      await session.release();
    }
  });

  it('refuses an opset below 13 and initializers whose data does not match their dims', () => {
    const base = { inputs: [], outputs: [], nodes: [] };
    expect(() => writeOnnxModel({ ...base, opset: 12 })).toThrow(/opset/);
    expect(() =>
      writeOnnxModel({
        ...base,
        initializers: [{ name: 'w', type: 'float32', dims: [2, 2], data: new Float32Array(3) }],
      }),
    ).toThrow(/dims/);
  });
});
