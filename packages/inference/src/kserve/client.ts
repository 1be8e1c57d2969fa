/**
 * KServe v2 / Open Inference Protocol HTTP client: lets workers use Triton, KServe,
 * Seldon or `arteria serve-models` as their inference backend. Tensors travel with the
 * binary tensor data extension by default (JSON for servers without it).
 */
import { z } from 'zod';
import { ArteriaError, Lifecycle, toArteriaError, type ErrorCode } from '@arteria/protocol';
import type { InferenceBackend, ModelDescription, ModelRef, Tensor } from '@arteria/sdk';
import { concatRows, sliceRows } from '../tensors.js';
import {
  ErrorBody,
  INFERENCE_HEADER_LENGTH,
  InferResponse,
  ModelMetadata,
  ServerMetadata,
  encodeBody,
  fromDatatype,
  splitBody,
  tensorEntry,
  tensorFromEntry,
  type V2ModelMetadata,
  type V2ServerMetadata,
} from './protocol.js';

export const KServeV2Options = z.strictObject({
  /** Base URL of the server, e.g. http://triton:8000. */
  url: z.url(),
  /** Per-request limit. */
  timeoutMs: z.number().int().min(1).max(3_600_000).default(60_000),
  /** Send and ask for tensors as raw bytes (binary_tensor_data extension); false sends JSON arrays. */
  binary: z.boolean().default(true),
  /** Refuse models whose server does not report their digest (Arteria's server does; Triton does not). */
  requireDigest: z.boolean().default(false),
  /** Served version to use; default the server's (the highest). */
  modelVersion: z.string().regex(/^\d+$/).optional(),
  /**
   * Largest first-axis batch per request; larger inputs are split and the outputs joined.
   * 0: the max_batch_size the server reports (Arteria's does; set it for Triton), else no limit.
   */
  maxBatchFrames: z.number().int().min(0).max(1_000_000).default(0),
  /** Extra headers, e.g. an Authorization for a KServe ingress. */
  headers: z.record(z.string(), z.string()).default({}),
});
export type KServeV2Options = z.input<typeof KServeV2Options>;

export class KServeV2Backend implements InferenceBackend {
  readonly kind = 'kserve-v2';
  readonly config: Readonly<z.output<typeof KServeV2Options>>;
  readonly #loaded = new Map<string, { description: ModelDescription; maxBatch: number }>();
  readonly #inFlight = new Set<AbortController>();
  readonly #life = new Lifecycle('the KServe v2 backend');

  constructor(options: KServeV2Options) {
    const parsed = KServeV2Options.safeParse(options);
    if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `KServeV2Backend: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    this.config = Object.freeze({ ...parsed.data, url: parsed.data.url.replace(/\/+$/, '') });
    this.#life.defer('requests in flight', () => {
      for (const controller of this.#inFlight) controller.abort(this.#life.illegal('finish a request'));
      this.#inFlight.clear();
    });
    this.#life.begin();
  }

  async serverReady(signal?: AbortSignal): Promise<boolean> {
    const res = await this.#request('GET', '/v2/health/ready', undefined, signal);
    await res.arrayBuffer();
    return res.ok;
  }

  async serverMetadata(signal?: AbortSignal): Promise<V2ServerMetadata> {
    return ServerMetadata.parse(await this.#json(await this.#request('GET', '/v2', undefined, signal), 'INFERENCE_UNAVAILABLE'));
  }

  async modelReady(name: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.#request('GET', `${this.#modelPath(name)}/ready`, undefined, signal);
    await res.arrayBuffer();
    return res.ok;
  }

  async modelMetadata(name: string, signal?: AbortSignal): Promise<V2ModelMetadata> {
    const res = await this.#request('GET', this.#modelPath(name), undefined, signal);
    const parsed = ModelMetadata.safeParse(await this.#json(res, 'MODEL_UNAVAILABLE'));
    if (!parsed.success) throw new ArteriaError('INFERENCE_UNAVAILABLE', `model ${name}: the server's metadata is not KServe v2: ${parsed.error.message}`);
    return parsed.data;
  }

  /** Checks the model is served and ready (and its digest, where the server reports one). */
  async load(model: ModelRef, signal?: AbortSignal): Promise<ModelDescription> {
    this.#life.assertRunning('load a model');
    return (await this.#load(model, signal)).description;
  }

  async #load(model: ModelRef, signal?: AbortSignal): Promise<{ description: ModelDescription; maxBatch: number }> {
    const key = `${model.name}@${model.digest}`;
    const cached = this.#loaded.get(key);
    if (cached) return cached;
    if (!(await this.modelReady(model.name, signal))) throw new ArteriaError('MODEL_UNAVAILABLE', `model ${model.name} is not ready on ${this.config.url}`);
    const metadata = await this.modelMetadata(model.name, signal);
    const reported = metadata.parameters?.digest;
    if (typeof reported === 'string' && reported !== model.digest) {
      throw new ArteriaError('CHECKSUM_MISMATCH', `model ${model.name} on ${this.config.url} has digest ${reported}, expected ${model.digest}`);
    }
    if (typeof reported !== 'string' && this.config.requireDigest) {
      throw new ArteriaError('MODEL_UNAVAILABLE', `model ${model.name}: ${this.config.url} does not report the model's digest, and requireDigest is set`);
    }
    const tensors = (list: V2ModelMetadata['inputs']): ModelDescription['inputs'] =>
      list.map((t) => {
        const type = fromDatatype(t.datatype);
        if (type === undefined) throw new ArteriaError('INFERENCE_FAILED', `model ${model.name}: tensor ${t.name} has datatype ${t.datatype} (Arteria exchanges FP32, UINT8, INT64)`);
        return { name: t.name, type, dims: t.shape };
      });
    const description = { name: model.name, digest: model.digest, inputs: tensors(metadata.inputs), outputs: tensors(metadata.outputs) };
    const reportedMax = metadata.parameters?.max_batch_size;
    const maxBatch = this.config.maxBatchFrames > 0 ? this.config.maxBatchFrames : typeof reportedMax === 'number' && reportedMax > 0 ? reportedMax : 0;
    const loaded = { description, maxBatch };
    this.#loaded.set(key, loaded);
    return loaded;
  }

  async infer(model: ModelRef, inputs: readonly Tensor[], signal?: AbortSignal): Promise<Tensor[]> {
    const { description, maxBatch } = await this.#load(model, signal);
    const rows = inputs[0]?.dims[0] ?? 0;
    if (maxBatch === 0 || rows <= maxBatch || inputs.some((t) => t.dims[0] !== rows)) return this.#infer(model, description, inputs, signal);
    const chunks: Tensor[][] = [];
    for (let start = 0; start < rows; start += maxBatch) {
      const end = Math.min(rows, start + maxBatch);
      chunks.push(await this.#infer(model, description, inputs.map((t) => sliceRows(t, start, end)), signal));
    }
    return (chunks[0] ?? []).map((_, i) => concatRows(chunks.map((c) => c[i] as Tensor)));
  }

  async #infer(model: ModelRef, description: ModelDescription, inputs: readonly Tensor[], signal?: AbortSignal): Promise<Tensor[]> {
    const binary = this.config.binary;
    const entries = inputs.map((t) => tensorEntry(t, binary));
    const request = {
      inputs: entries.map((e) => e.entry),
      outputs: description.outputs.map((o) => ({ name: o.name, parameters: { binary_data: binary } })),
    };
    const { body, headerLength } = encodeBody(request, entries.flatMap((e) => (e.bytes ? [e.bytes] : [])));
    const headers: Record<string, string> = { 'content-type': headerLength === undefined ? 'application/json' : 'application/octet-stream' };
    if (headerLength !== undefined) headers[INFERENCE_HEADER_LENGTH] = String(headerLength);
    const res = await this.#request('POST', `${this.#modelPath(model.name)}/infer`, { body, headers }, signal);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) throw this.#httpError(res.status, bytes, `inference on ${model.name}`);
    const { json, binary: tail } = splitBody(bytes, res.headers.get(INFERENCE_HEADER_LENGTH), 'INFERENCE_UNAVAILABLE');
    const parsed = InferResponse.safeParse(json);
    if (!parsed.success) throw new ArteriaError('INFERENCE_UNAVAILABLE', `the server's inference response is not KServe v2: ${parsed.error.message}`);
    const cursor = { offset: 0 };
    return parsed.data.outputs.map((entry) => tensorFromEntry(entry, tail, cursor, 'INFERENCE_FAILED'));
  }

  describe(): Promise<ModelDescription[]> {
    return Promise.resolve([...this.#loaded.values()].map((m) => m.description));
  }

  /** Aborts requests in flight; memoised, and a request after it is ILLEGAL_STATE. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #modelPath(name: string): string {
    const version = this.config.modelVersion === undefined ? '' : `/versions/${this.config.modelVersion}`;
    return `/v2/models/${encodeURIComponent(name)}${version}`;
  }

  async #request(method: string, path: string, init: { body: Buffer; headers: Record<string, string> } | undefined, signal?: AbortSignal): Promise<Response> {
    this.#life.assertRunning(`${method} ${path}`);
    const controller = new AbortController();
    const signals = [controller.signal, AbortSignal.timeout(this.config.timeoutMs), ...(signal ? [signal] : [])];
    this.#inFlight.add(controller);
    try {
      return await fetch(`${this.config.url}${path}`, {
        method,
        headers: { ...this.config.headers, ...init?.headers },
        body: init?.body,
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      // The caller's own reason (its lease lost, its deadline) is what it stopped for.
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : toArteriaError(signal.reason);
      throw new ArteriaError('INFERENCE_UNAVAILABLE', `${method} ${this.config.url}${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      this.#inFlight.delete(controller);
    }
  }

  async #json(res: Response, notFound: ErrorCode): Promise<unknown> {
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) throw this.#httpError(res.status, bytes, res.url, notFound);
    return splitBody(bytes, undefined, 'INFERENCE_UNAVAILABLE').json;
  }

  #httpError(status: number, body: Uint8Array, what: string, notFound: ErrorCode = 'MODEL_UNAVAILABLE'): ArteriaError {
    const text = Buffer.from(body).toString('utf8');
    let message = text.slice(0, 500);
    try {
      message = ErrorBody.parse(JSON.parse(text)).error;
    } catch {
      // Not a KServe error body: keep the raw text.
    }
    const code: ErrorCode = status === 404 ? notFound : status >= 500 || status === 429 ? 'INFERENCE_UNAVAILABLE' : 'INFERENCE_FAILED';
    return new ArteriaError(code, `${what}: HTTP ${status}: ${message}`);
  }
}
