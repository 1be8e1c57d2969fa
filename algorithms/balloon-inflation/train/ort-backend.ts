import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import type { InferenceBackend, ModelDescription, ModelRef, Tensor } from '@arteria/sdk';

/**
 * The smallest InferenceBackend over onnxruntime-node, for training-time evaluation and
 * tests of this algorithm (the platform uses the full backend of @arteria/inference).
 */
export class LocalOnnxBackend implements InferenceBackend {
  readonly kind = 'onnxruntime-node-local';
  readonly #sessions = new Map<string, { session: InferenceSession; model: ModelRef }>();

  async load(model: ModelRef): Promise<ModelDescription> {
    if (!this.#sessions.has(model.digest)) {
      if (model.path === undefined) throw new Error(`model ${model.name} has no local path`);
      const session = await InferenceSession.create(model.path, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      this.#sessions.set(model.digest, { session, model });
    }
    return describe(model);
  }

  async infer(model: ModelRef, inputs: readonly Tensor[]): Promise<Tensor[]> {
    await this.load(model);
    const { session } = this.#sessions.get(model.digest)!;
    const feeds: Record<string, OrtTensor> = {};
    for (const t of inputs) {
      if (!(t.data instanceof Float32Array)) throw new Error(`tensor ${t.name}: only float32 inputs are supported here`);
      feeds[t.name] = new OrtTensor('float32', t.data, [...t.dims]);
    }
    const results = await session.run(feeds);
    return Object.entries(results).map(([name, value]) => ({ name, type: 'float32' as const, dims: [...value.dims], data: value.data as Float32Array }));
  }

  describe(): Promise<ModelDescription[]> {
    return Promise.resolve([...this.#sessions.values()].map(({ model }) => describe(model)));
  }

  async close(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const { session } of sessions) await session.release();
  }
}

function describe(model: ModelRef): ModelDescription {
  return { name: model.name, digest: model.digest, inputs: [], outputs: [] };
}
