/**
 * ONNX Runtime in-process: one session per model digest, reused by every call; the
 * model file is checked against its digest before it is loaded; large frame batches are
 * split into calls of at most `maxBatchFrames` along the first axis.
 */
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { ArteriaError, toArteriaError, Lifecycle } from '@arteria/protocol';
import type { InferenceBackend, ModelDescription, ModelRef, Tensor, TensorType } from '@arteria/sdk';
import { readVerifiedModel } from './model-digest.js';
import { checkTensor, concatRows, isTensorType, sliceRows } from './tensors.js';

export const OnnxRuntimeOptions = z.strictObject({
  /** Threads one operator may use; default 1 (Arteria parallelises across tasks). 0 lets ONNX Runtime pick. */
  intraOpThreads: z.number().int().min(0).max(256).default(1),
  /** Threads running independent operators at once (only with executionMode 'parallel'). */
  interOpThreads: z.number().int().min(0).max(256).default(1),
  executionMode: z.enum(['sequential', 'parallel']).default('sequential'),
  /** Largest first-axis batch sent to the model in one call; 0 sends every frame at once. */
  maxBatchFrames: z.number().int().min(0).max(100_000).default(0),
  graphOptimization: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
  /**
   * ONNX Runtime execution providers in order of preference. Each model's session is made
   * with the first that loads here (a provider whose libraries or device are missing is
   * skipped), so `['cuda', 'cpu']` uses the GPU where there is one and the CPU elsewhere.
   */
  executionProviders: z.array(z.enum(['tensorrt', 'cuda', 'cpu'])).min(1).max(3).default(['cpu']),
});
export type OnnxRuntimeOptions = z.input<typeof OnnxRuntimeOptions>;
type OnnxRuntimeConfig = Readonly<z.output<typeof OnnxRuntimeOptions>>;

interface LoadedModel {
  session: ort.InferenceSession;
  description: ModelDescription;
  /** The execution provider the session runs on. */
  provider: string;
}

function ortType(type: string, where: string): TensorType {
  if (isTensorType(type)) return type;
  throw new ArteriaError('INFERENCE_FAILED', `${where} has tensor type ${type}; Arteria exchanges float32, uint8 and int64`);
}

function describe(model: ModelRef, session: ort.InferenceSession): ModelDescription {
  const values = (metadata: readonly ort.InferenceSession.ValueMetadata[]): ModelDescription['inputs'] =>
    metadata.map((m) => {
      if (!m.isTensor) throw new ArteriaError('INFERENCE_FAILED', `model ${model.name}: ${m.name} is not a tensor`);
      // Symbolic dims (batch, height...) are -1, as in the KServe v2 metadata.
      return { name: m.name, type: ortType(m.type, `model ${model.name}: ${m.name}`), dims: m.shape.map((d) => (typeof d === 'number' ? d : -1)) };
    });
  return { name: model.name, digest: model.digest, inputs: values(session.inputMetadata), outputs: values(session.outputMetadata) };
}

export class OnnxRuntimeBackend implements InferenceBackend {
  readonly kind = 'onnxruntime';
  readonly config: OnnxRuntimeConfig;
  readonly #models = new Map<string, Promise<LoadedModel>>();
  readonly #life = new Lifecycle('the ONNX Runtime backend');
  /** Digests whose session close() releases (one step each). */
  readonly #releasing = new Set<string>();

  constructor(options: OnnxRuntimeOptions = {}) {
    const parsed = OnnxRuntimeOptions.safeParse(options);
    if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `OnnxRuntimeBackend: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    this.config = Object.freeze(parsed.data);
    this.#life.begin();
  }

  async load(model: ModelRef, signal?: AbortSignal): Promise<ModelDescription> {
    return (await this.#session(model, signal)).description;
  }

  async infer(model: ModelRef, inputs: readonly Tensor[], signal?: AbortSignal): Promise<Tensor[]> {
    const { session, description } = await this.#session(model, signal);
    for (const t of inputs) checkTensor(t);
    const rows = inputs[0]?.dims[0] ?? 0;
    const max = this.config.maxBatchFrames;
    if (max === 0 || rows <= max || inputs.some((t) => t.dims[0] !== rows)) return this.#run(session, description, inputs, signal);
    const chunks: Tensor[][] = [];
    for (let start = 0; start < rows; start += max) {
      const end = Math.min(rows, start + max);
      chunks.push(await this.#run(session, description, inputs.map((t) => sliceRows(t, start, end)), signal));
    }
    const first = chunks[0] ?? [];
    return first.map((_, i) => concatRows(chunks.map((c) => c[i] as Tensor)));
  }

  /** The execution provider `model`'s session was made with (loading it first if needed). */
  async executionProvider(model: ModelRef, signal?: AbortSignal): Promise<string> {
    return (await this.#session(model, signal)).provider;
  }

  async describe(): Promise<ModelDescription[]> {
    const loaded = await Promise.allSettled(this.#models.values());
    return loaded.flatMap((r) => (r.status === 'fulfilled' ? [r.value.description] : []));
  }

  /** Releases every session (one close step per model); memoised, every failure reported (CLOSE_FAILED). */
  close(): Promise<void> {
    return this.#life.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #session(model: ModelRef, signal?: AbortSignal): Promise<LoadedModel> {
    if (!this.#life.running) return Promise.reject(this.#life.illegal(`use model ${model.name}`));
    let loaded = this.#models.get(model.digest);
    if (!loaded) {
      const created = this.#create(model, signal);
      loaded = created;
      this.#models.set(model.digest, created);
      // A failed load is not cached: the next call tries again (the file may be fixed).
      created.catch(() => this.#models.delete(model.digest));
      if (!this.#releasing.has(model.digest)) {
        this.#releasing.add(model.digest);
        this.#life.defer(`session of ${model.name}`, () => this.#release(model.digest));
      }
    }
    return loaded;
  }

  async #release(digest: string): Promise<void> {
    const loaded = this.#models.get(digest);
    this.#models.delete(digest);
    // A load still running is awaited; a failed one holds no session.
    const session = await loaded?.then((m) => m.session, () => undefined);
    await session?.release();
  }

  async #create(model: ModelRef, signal?: AbortSignal): Promise<LoadedModel> {
    const bytes = await readVerifiedModel(model, signal);
    const c = this.config;
    let session: ort.InferenceSession | undefined;
    let provider = '';
    const failures: string[] = [];
    // One provider per attempt: ONNX Runtime fails the whole session when any listed
    // provider cannot load, rather than falling back to the next.
    for (const candidate of c.executionProviders) {
      try {
        session = await ort.InferenceSession.create(bytes, {
          intraOpNumThreads: c.intraOpThreads,
          interOpNumThreads: c.interOpThreads,
          executionMode: c.executionMode,
          graphOptimizationLevel: c.graphOptimization,
          executionProviders: [candidate],
        });
        provider = candidate;
        break;
      } catch (err) {
        failures.push(`${candidate}: ${toArteriaError(err).message}`);
      }
    }
    if (session === undefined) {
      throw new ArteriaError('MODEL_UNAVAILABLE', `model ${model.name}: ONNX Runtime cannot load it with ${c.executionProviders.join(', ')}: ${failures.join('; ')}`);
    }
    try {
      return { session, description: describe(model, session), provider };
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  async #run(session: ort.InferenceSession, description: ModelDescription, inputs: readonly Tensor[], signal?: AbortSignal): Promise<Tensor[]> {
    signal?.throwIfAborted();
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) {
      if (!description.inputs.some((i) => i.name === t.name)) {
        throw new ArteriaError('INFERENCE_FAILED', `model ${description.name} has no input ${t.name} (inputs: ${description.inputs.map((i) => i.name).join(', ')})`);
      }
      feeds[t.name] = new ort.Tensor(t.type, t.data, [...t.dims]);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (err) {
      throw new ArteriaError('INFERENCE_FAILED', `model ${description.name}: ${toArteriaError(err).message}`, { cause: err });
    }
    return description.outputs.map(({ name }) => {
      const value = results[name];
      if (!value) throw new ArteriaError('INFERENCE_FAILED', `model ${description.name} returned no ${name}`);
      const type = ortType(value.type, `output ${name}`);
      return { name, type, dims: [...value.dims], data: value.data as Tensor['data'] };
    });
  }
}
