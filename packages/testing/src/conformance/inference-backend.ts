import { describe, expect, it } from 'vitest';
import type { InferenceBackend, ModelRef, Tensor } from '@arteria/sdk';

/**
 * What the suite runs against: a backend serving a model that takes `frames`
 * (float32 [n, 1, height, width], symbolic n, height and width) and returns `scores`
 * (float32 [n, 2]), with `reference` computing those scores by hand.
 */
export interface InferenceBackendUnderTest {
  backend: InferenceBackend;
  model: ModelRef;
  /** The scores the model computes for `n` frames of `h` x `w` (row-major, frame after frame). */
  reference: (frames: Float32Array, n: number, h: number, w: number) => number[];
  /** A model the backend must refuse (wrong digest or not served), and the code it refuses with. */
  refused: { model: ModelRef; code: string };
}

const H = 16;
const W = 12;

function frames(n: number, seed: number): Tensor {
  const data = new Float32Array(n * H * W).map((_, i) => Math.sin((i + seed) * 0.173) * 2);
  return { name: 'frames', type: 'float32', dims: [n, 1, H, W], data };
}

/** A tensor's values as numbers (int64 values included), for comparisons. */
export function tensorValues(t: { data: Float32Array | Uint8Array | BigInt64Array } | undefined): number[] {
  if (!t) return [];
  return t.data instanceof BigInt64Array ? Array.from(t.data, Number) : Array.from(t.data);
}

/**
 * The contract every `InferenceBackend` keeps: it describes the model (symbolic dims as -1),
 * computes what the model computes, gives a frame the same answer alone as in a batch,
 * and refuses an unknown input (INFERENCE_FAILED) and a model it must not serve.
 * `setup` is called in each test, after the caller's `beforeAll` has started the backend.
 */
export function inferenceBackendConformance(name: string, setup: () => InferenceBackendUnderTest): void {
  describe(`InferenceBackend conformance: ${name}`, () => {
    it('describes the model: inputs, outputs, symbolic dims as -1', async () => {
      const { backend, model } = setup();
      const d = await backend.load(model);
      expect(d.name).toBe(model.name);
      expect(d.inputs).toEqual([{ name: 'frames', type: 'float32', dims: [-1, 1, -1, -1] }]);
      expect(d.outputs).toEqual([{ name: 'scores', type: 'float32', dims: [-1, 2] }]);
      expect((await backend.describe()).map((m) => m.name)).toContain(model.name);
    });

    it('computes what the model computes, for a batch of frames', async () => {
      const { backend, model, reference } = setup();
      const input = frames(5, 3);
      const [scores, ...rest] = await backend.infer(model, [input]);
      expect(rest).toEqual([]);
      expect(scores?.name).toBe('scores');
      expect(scores?.type).toBe('float32');
      expect(scores?.dims).toEqual([5, 2]);
      const expected = reference(input.data as Float32Array, 5, H, W);
      tensorValues(scores).forEach((v, i) => expect(Number(v)).toBeCloseTo(expected[i] ?? NaN, 4));
    });

    it('gives each frame the same answer alone as in a batch', async () => {
      const { backend, model } = setup();
      const batch = frames(4, 11);
      const [all] = await backend.infer(model, [batch]);
      const one: Tensor = { ...batch, dims: [1, 1, H, W], data: (batch.data as Float32Array).slice(2 * H * W, 3 * H * W) };
      const [single] = await backend.infer(model, [one]);
      expect(tensorValues(single)).toEqual(tensorValues(all).slice(4, 6));
    });

    it('refuses an input the model does not have', async () => {
      const { backend, model } = setup();
      await expect(backend.infer(model, [{ ...frames(1, 0), name: 'nope' }])).rejects.toMatchObject({ code: 'INFERENCE_FAILED' });
    });

    it('refuses a model it must not serve', async () => {
      const { backend, refused } = setup();
      await expect(backend.load(refused.model)).rejects.toMatchObject({ code: refused.code });
    });
  });
}
