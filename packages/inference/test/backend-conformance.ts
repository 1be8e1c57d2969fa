/**
 * What every InferenceBackend must do, run against each adapter: describe the model,
 * compute what the model computes, give the same answer however frames are batched,
 * and refuse unknown inputs and models.
 */
import { expect, it } from 'vitest';
import type { InferenceBackend, ModelRef, Tensor } from '@arteria/sdk';
import { tinyClassifier, values } from './tiny-model.js';

export interface ConformanceSetup {
  backend: InferenceBackend;
  model: ModelRef;
  /** A model the backend must refuse (wrong digest or not served). */
  refused: { model: ModelRef; code: string };
}

const H = 16;
const W = 12;

function frames(n: number, seed: number): Tensor {
  const data = new Float32Array(n * H * W).map((_, i) => Math.sin((i + seed) * 0.173) * 2);
  return { name: 'frames', type: 'float32', dims: [n, 1, H, W], data };
}

export function inferenceBackendConformance(setup: () => ConformanceSetup): void {
  const { reference } = tinyClassifier();

  it('describes the model: inputs, outputs, symbolic dims as -1', async () => {
    const { backend, model } = setup();
    const d = await backend.load(model);
    expect(d.name).toBe(model.name);
    expect(d.inputs).toEqual([{ name: 'frames', type: 'float32', dims: [-1, 1, -1, -1] }]);
    expect(d.outputs).toEqual([{ name: 'scores', type: 'float32', dims: [-1, 2] }]);
    expect((await backend.describe()).map((m) => m.name)).toContain(model.name);
  });

  it('computes what the model computes, for a batch of frames', async () => {
    const { backend, model } = setup();
    const input = frames(5, 3);
    const [scores, ...rest] = await backend.infer(model, [input]);
    expect(rest).toEqual([]);
    expect(scores?.name).toBe('scores');
    expect(scores?.type).toBe('float32');
    expect(scores?.dims).toEqual([5, 2]);
    const expected = reference(input.data as Float32Array, 5, H, W);
    values(scores).forEach((v, i) => expect(Number(v)).toBeCloseTo(expected[i] ?? NaN, 4));
  });

  it('gives each frame the same answer alone as in a batch', async () => {
    const { backend, model } = setup();
    const batch = frames(4, 11);
    const [all] = await backend.infer(model, [batch]);
    const one: Tensor = { ...batch, dims: [1, 1, H, W], data: (batch.data as Float32Array).slice(2 * H * W, 3 * H * W) };
    const [single] = await backend.infer(model, [one]);
    expect(values(single)).toEqual(values(all).slice(4, 6));
  });

  it('refuses an input the model does not have', async () => {
    const { backend, model } = setup();
    await expect(backend.infer(model, [{ ...frames(1, 0), name: 'nope' }])).rejects.toMatchObject({ code: 'INFERENCE_FAILED' });
  });

  it('refuses a model it must not serve', async () => {
    const { backend, refused } = setup();
    await expect(backend.load(refused.model)).rejects.toMatchObject({ code: refused.code });
  });
}
