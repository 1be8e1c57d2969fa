/**
 * `arteria serve-models`: a KServe v2 / Open Inference Protocol HTTP server over ONNX
 * Runtime, reading a Triton-compatible model repository. Workers reach it exactly as
 * they reach Triton or KServe, so either replaces it without code changes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ArteriaError, Lifecycle, toArteriaError } from '@arteria/protocol';
import type { ModelDescription, ModelRef, Tensor } from '@arteria/sdk';
import { OnnxRuntimeBackend, type OnnxRuntimeOptions } from '../onnx-runtime-backend.js';
import { checkConfigMatchesModel, readModelRepository, type RepositoryModel } from './model-repository.js';
import {
  INFERENCE_HEADER_LENGTH,
  InferRequest,
  encodeBody,
  splitBody,
  tensorEntry,
  tensorFromEntry,
  toDatatype,
  type V2ModelMetadata,
  type V2TensorJson,
} from './protocol.js';

export interface ModelServerOptions {
  /** Folder of `<model>/config.pbtxt` and `<model>/<version>/model.onnx`. */
  repository: string;
  host?: string;
  /** 0 picks a free port. Default 8000 (Triton's HTTP port). */
  port?: number;
  /** Largest request body accepted. Default 1 GiB. */
  maxBodyBytes?: number;
  onnxRuntime?: OnnxRuntimeOptions;
}

const SERVER_NAME = 'arteria';
const SERVER_VERSION = '0.1.0';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function statusFor(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  const e = toArteriaError(err);
  const status = e.code === 'INFERENCE_FAILED' ? 400 : e.code === 'MODEL_UNAVAILABLE' ? 404 : 500;
  return { status, message: e.message };
}

export class KServeModelServer implements AsyncDisposable {
  readonly #server: http.Server;
  readonly #backend: OnnxRuntimeBackend;
  readonly #models: Map<string, RepositoryModel>;
  readonly #descriptions = new Map<string, ModelDescription>();
  readonly #maxBodyBytes: number;
  readonly #life = new Lifecycle('the KServe model server');

  private constructor(models: Map<string, RepositoryModel>, backend: OnnxRuntimeBackend, maxBodyBytes: number) {
    this.#models = models;
    this.#backend = backend;
    this.#maxBodyBytes = maxBodyBytes;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        const { status, message } = statusFor(err);
        if (!res.headersSent) this.#json(res, status, { error: message });
        else res.destroy(err instanceof Error ? err : undefined);
      });
    });
    this.#server.on('connection', (socket) => socket.setNoDelay(true));
  }

  /** Loads every model version (checking configs against the ONNX files), then listens. */
  static async start(options: ModelServerOptions): Promise<KServeModelServer> {
    const models = await readModelRepository(options.repository);
    const backend = new OnnxRuntimeBackend(options.onnxRuntime);
    const server = new KServeModelServer(models, backend, options.maxBodyBytes ?? 1024 ** 3);
    const listener = server.#server;
    try {
      // A start that fails closes what it opened (the backend's sessions).
      await server.#life.start(async () => {
        server.#life.defer('ONNX Runtime backend', () => backend.close());
        for (const model of models.values()) {
          for (const ref of model.versions.values()) {
            const description = await backend.load(ref);
            checkConfigMatchesModel(model.config, description);
            server.#descriptions.set(ref.digest, description);
          }
        }
        await new Promise<void>((resolve, reject) => {
          listener.once('error', reject);
          listener.listen(options.port ?? 8000, options.host ?? '127.0.0.1', () => {
            listener.off('error', reject);
            resolve();
          });
        });
        server.#life.defer('HTTP server', () => new Promise<void>((resolve) => {
          listener.close(() => resolve());
          listener.closeAllConnections();
        }));
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new ArteriaError('PORT_IN_USE', `port ${String(options.port)} is taken; choose another with --port`, { cause: err });
      }
      throw err;
    }
    return server;
  }

  get url(): string {
    const address = this.#server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${String(address.port)}`;
  }

  /** Names and versions served. */
  models(): { name: string; versions: string[] }[] {
    return [...this.#models.values()].map((m) => ({ name: m.config.name, versions: [...m.versions.keys()] }));
  }

  /** Stops listening (open connections are cut), then releases the models; memoised. */
  close(): Promise<void> {
    return this.#life.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
    if (parts[0] !== 'v2') throw new HttpError(404, `no route ${url.pathname}`);
    const method = req.method ?? 'GET';
    if (parts.length === 1 && method === 'GET') {
      this.#json(res, 200, { name: SERVER_NAME, version: SERVER_VERSION, extensions: ['binary_tensor_data'] });
      return;
    }
    if (parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready') && method === 'GET') {
      this.#json(res, 200, { [parts[2]]: this.#life.running });
      return;
    }
    if (parts[1] !== 'models' || parts[2] === undefined) throw new HttpError(404, `no route ${url.pathname}`);
    const name = parts[2];
    let rest = parts.slice(3);
    let version: string | undefined;
    if (rest[0] === 'versions') {
      version = rest[1];
      rest = rest.slice(2);
    }
    const { model, versionLabel, ref } = this.#resolve(name, version);
    if (rest.length === 0 && method === 'GET') {
      this.#json(res, 200, this.#metadata(model, ref));
      return;
    }
    if (rest.length === 1 && rest[0] === 'ready' && method === 'GET') {
      this.#json(res, 200, { name, version: versionLabel, ready: true });
      return;
    }
    if (rest.length === 1 && rest[0] === 'infer' && method === 'POST') {
      await this.#infer(req, res, model, versionLabel, ref);
      return;
    }
    throw new HttpError(404, `no route ${method} ${url.pathname}`);
  }

  #resolve(name: string, version: string | undefined): { model: RepositoryModel; versionLabel: string; ref: ModelRef } {
    const model = this.#models.get(name);
    if (!model) throw new HttpError(404, `model ${name} is not in the repository`);
    const versionLabel = version ?? [...model.versions.keys()].at(-1) ?? '';
    const ref = model.versions.get(versionLabel);
    if (!ref) throw new HttpError(404, `model ${name} has no version ${versionLabel}`);
    return { model, versionLabel, ref };
  }

  #metadata(model: RepositoryModel, ref: ModelRef): V2ModelMetadata {
    const description = this.#descriptions.get(ref.digest);
    if (!description) throw new ArteriaError('INTERNAL', `model ${ref.name} was not loaded`);
    const tensors = (list: ModelDescription['inputs']): V2ModelMetadata['inputs'] => list.map((t) => ({ name: t.name, datatype: toDatatype(t.type), shape: [...t.dims] }));
    return {
      name: model.config.name,
      versions: [...model.versions.keys()],
      platform: model.config.platform,
      inputs: tensors(description.inputs),
      outputs: tensors(description.outputs),
      parameters: { digest: ref.digest, max_batch_size: model.config.maxBatchSize },
    };
  }

  async #infer(req: http.IncomingMessage, res: http.ServerResponse, model: RepositoryModel, versionLabel: string, ref: ModelRef): Promise<void> {
    const body = await this.#readBody(req);
    const { json, binary } = splitBody(body, req.headers[INFERENCE_HEADER_LENGTH] as string | undefined, 'INFERENCE_FAILED');
    const parsed = InferRequest.safeParse(json);
    if (!parsed.success) throw new HttpError(400, `invalid inference request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const request = parsed.data;
    const cursor = { offset: 0 };
    const inputs: Tensor[] = request.inputs.map((entry) => tensorFromEntry(entry, binary, cursor, 'INFERENCE_FAILED'));
    const max = model.config.maxBatchSize;
    for (const t of inputs) {
      if (max > 0 && (t.dims[0] ?? 0) > max) throw new HttpError(400, `input ${t.name}: batch ${String(t.dims[0])} exceeds max_batch_size ${max}`);
    }
    const outputs = await this.#backend.infer(ref, inputs);
    const wanted = request.outputs?.map((o) => o.name);
    const allBinary = request.parameters?.binary_data_output === true;
    const binaries: Uint8Array[] = [];
    const entries: V2TensorJson[] = [];
    for (const t of outputs) {
      if (wanted && !wanted.includes(t.name)) continue;
      const asked = request.outputs?.find((o) => o.name === t.name)?.parameters?.binary_data;
      const { entry, bytes } = tensorEntry(t, asked === true || (asked === undefined && allBinary));
      entries.push(entry);
      if (bytes) binaries.push(bytes);
    }
    const missing = wanted?.filter((n) => !outputs.some((t) => t.name === n)) ?? [];
    if (missing.length > 0) throw new HttpError(400, `model ${model.config.name} has no output ${missing.join(', ')}`);
    const response = { model_name: model.config.name, model_version: versionLabel, ...(request.id === undefined ? {} : { id: request.id }), outputs: entries };
    const { body: out, headerLength } = encodeBody(response, binaries);
    const headers: http.OutgoingHttpHeaders = { 'content-type': headerLength === undefined ? 'application/json' : 'application/octet-stream', 'content-length': out.byteLength };
    if (headerLength !== undefined) headers[INFERENCE_HEADER_LENGTH] = headerLength;
    res.writeHead(200, headers);
    res.end(out);
  }

  async #readBody(req: http.IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > this.#maxBodyBytes) throw new HttpError(413, `request body of ${declared} bytes exceeds ${this.#maxBodyBytes}`);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of req) {
      const buffer = chunk as Buffer;
      total += buffer.byteLength;
      if (total > this.#maxBodyBytes) throw new HttpError(413, `request body exceeds ${this.#maxBodyBytes} bytes`);
      chunks.push(buffer);
    }
    return Buffer.concat(chunks, total);
  }

  #json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}
