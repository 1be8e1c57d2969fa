import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KServeModelServer, KServeV2Backend, parseModelConfig, sha256Digest, writeModelConfig } from '@arteria/inference';
import type { ModelRef } from '@arteria/sdk';
import { inferenceBackendConformance } from '@arteria/testing';
import { tinyClassifier } from './tiny-model.js';

let dir: string;
let server: KServeModelServer;
let model: ModelRef;
const { bytes, reference } = tinyClassifier();

async function writeRepository(root: string, config: string): Promise<void> {
  await mkdir(path.join(root, 'tiny', '1'), { recursive: true });
  await writeFile(path.join(root, 'tiny', '1', 'model.onnx'), bytes);
  await writeFile(path.join(root, 'tiny', 'config.pbtxt'), config);
}

const tinyConfig = writeModelConfig({
  name: 'tiny',
  maxBatchSize: 8,
  inputs: [{ name: 'frames', type: 'float32', dims: [1, -1, -1] }],
  outputs: [{ name: 'scores', type: 'float32', dims: [2] }],
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'arteria-kserve-'));
  await writeRepository(path.join(dir, 'repo'), tinyConfig);
  server = await KServeModelServer.start({ repository: path.join(dir, 'repo'), port: 0 });
  model = { name: 'tiny', digest: sha256Digest(bytes) };
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('KServeV2Backend against arteria serve-models, binary tensors', () => {
  let backend: KServeV2Backend;
  beforeAll(() => {
    backend = new KServeV2Backend({ url: server.url, requireDigest: true });
  });
  afterAll(async () => backend.close());
  inferenceBackendConformance('KServe v2 client, binary tensors', () => ({
    backend,
    model,
    reference,
    refused: { model: { name: 'tiny', digest: `sha256:${'0'.repeat(64)}` }, code: 'CHECKSUM_MISMATCH' },
  }));
});

describe('KServeV2Backend against arteria serve-models, JSON tensors', () => {
  let backend: KServeV2Backend;
  beforeAll(() => {
    backend = new KServeV2Backend({ url: server.url, binary: false });
  });
  afterAll(async () => backend.close());
  inferenceBackendConformance('KServe v2 client, JSON tensors', () => ({
    backend,
    model,
    reference,
    refused: { model: { name: 'absent', digest: model.digest }, code: 'MODEL_UNAVAILABLE' },
  }));
});

describe('arteria serve-models', () => {
  it('speaks the KServe v2 health and metadata endpoints', async () => {
    const client = new KServeV2Backend({ url: server.url });
    expect(await client.serverReady()).toBe(true);
    expect(await client.serverMetadata()).toMatchObject({ name: 'arteria', extensions: ['binary_tensor_data'] });
    expect(await client.modelReady('tiny')).toBe(true);
    expect(await client.modelReady('absent')).toBe(false);
    const metadata = await client.modelMetadata('tiny');
    expect(metadata).toMatchObject({ name: 'tiny', versions: ['1'], platform: 'onnxruntime_onnx', parameters: { digest: model.digest } });
    expect(metadata.inputs).toEqual([{ name: 'frames', datatype: 'FP32', shape: [-1, 1, -1, -1] }]);
    expect(server.models()).toEqual([{ name: 'tiny', versions: ['1'] }]);
  });

  it('answers a raw JSON request as the protocol specifies, and enforces max_batch_size', async () => {
    const request = { id: 'r1', inputs: [{ name: 'frames', shape: [1, 1, 2, 2], datatype: 'FP32', data: [[[[1, 2], [3, 4]]]] }] };
    const res = await fetch(`${server.url}/v2/models/tiny/versions/1/infer`, { method: 'POST', body: JSON.stringify(request) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model_name: string; model_version: string; id: string; outputs: { name: string; shape: number[]; datatype: string; data: number[] }[] };
    expect(body).toMatchObject({ model_name: 'tiny', model_version: '1', id: 'r1', outputs: [{ name: 'scores', shape: [1, 2], datatype: 'FP32' }] });
    expect(body.outputs[0]?.data).toHaveLength(2);

    const tooMany = { inputs: [{ name: 'frames', shape: [9, 1, 1, 1], datatype: 'FP32', data: new Array(9).fill(0) }] };
    const refused = await fetch(`${server.url}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify(tooMany) });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(/max_batch_size 8/);
  });

  it('splits a run larger than max_batch_size into requests the server accepts', async () => {
    const client = new KServeV2Backend({ url: server.url });
    const n = 20; // max_batch_size 8: three requests
    const data = new Float32Array(n * 36).map((_, i) => Math.cos(i * 0.05));
    const [scores] = await client.infer(model, [{ name: 'frames', type: 'float32', dims: [n, 1, 6, 6], data }]);
    expect(scores?.dims).toEqual([n, 2]);
    const expected = reference(data, n, 6, 6);
    Array.from(scores?.data ?? [], Number).forEach((v, i) => expect(v).toBeCloseTo(expected[i] ?? NaN, 4));
  });

  it('refuses at start a config.pbtxt that contradicts the ONNX file', async () => {
    const root = path.join(dir, 'bad-repo');
    await writeRepository(root, tinyConfig.replace('dims: [ 2 ]', 'dims: [ 3 ]'));
    await expect(KServeModelServer.start({ repository: root, port: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/scores/) as unknown });
  });

  it('reports an unreachable server as INFERENCE_UNAVAILABLE (retryable)', async () => {
    const gone = await KServeModelServer.start({ repository: path.join(dir, 'repo'), port: 0 });
    const url = gone.url;
    await gone.close();
    const client = new KServeV2Backend({ url, timeoutMs: 2000 });
    const err: unknown = await client.load(model).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INFERENCE_UNAVAILABLE', retryable: true });
  });

  it('closes once on Lifecycle: ready goes false, a request after close is ILLEGAL_STATE, await using closes both', async () => {
    let url: string;
    {
      await using own = await KServeModelServer.start({ repository: path.join(dir, 'repo'), port: 0 });
      url = own.url;
      await using client = new KServeV2Backend({ url });
      expect(await client.serverReady()).toBe(true);
      await Promise.all([client.close(), client.close()]);
      await expect(client.load(model)).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
      await expect(client.serverReady()).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    }
    // The server was closed at the end of the block: nothing listens on its port.
    const probe = new KServeV2Backend({ url, timeoutMs: 2000 });
    await expect(probe.serverReady()).rejects.toMatchObject({ code: 'INFERENCE_UNAVAILABLE' });
    await probe.close();
  });
});

describe('config.pbtxt', () => {
  it('reads Triton-style text format: comments, repeated blocks, lists, backend instead of platform', () => {
    const text = `
      # a Triton config
      name: "balloon"
      backend: "onnxruntime"
      max_batch_size : 64
      input { name: "frames" data_type: TYPE_FP32 dims: [ 1, 64, 64 ] }
      input [ { name: "mask", data_type: TYPE_UINT8, dims: [ -1 ] } ]
      output [
        {
          name: "probability"   # per frame
          data_type: TYPE_FP32
          dims: [ 1 ]
        }
      ]
      instance_group [ { count: 1, kind: KIND_CPU } ]
      dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
    `;
    expect(parseModelConfig(text, 'balloon')).toEqual({
      name: 'balloon',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 64,
      inputs: [
        { name: 'frames', type: 'float32', dims: [1, 64, 64] },
        { name: 'mask', type: 'uint8', dims: [-1] },
      ],
      outputs: [{ name: 'probability', type: 'float32', dims: [1] }],
      defaultModelFilename: 'model.onnx',
    });
    expect(parseModelConfig(tinyConfig, 'tiny').inputs).toEqual([{ name: 'frames', type: 'float32', dims: [1, -1, -1] }]);
    expect(() => parseModelConfig('name: "x" platform: "tensorrt_plan"', 'x')).toThrow(/onnxruntime_onnx/);
    expect(() => parseModelConfig('name: "x" input { name: ', 'x')).toThrow(/config.pbtxt/);
  });

  it('round-trips what writeModelConfig writes', () => {
    expect(parseModelConfig(tinyConfig, 'tiny')).toMatchObject({ name: 'tiny', maxBatchSize: 8, outputs: [{ name: 'scores', type: 'float32', dims: [2] }] });
  });
});
