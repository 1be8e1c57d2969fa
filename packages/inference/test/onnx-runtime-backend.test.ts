import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxRuntimeBackend, sha256Digest } from '@arteria/inference';
import type { ModelRef } from '@arteria/sdk';
import { backendForModel, optionsFromQuery } from '@arteria/inference/runner-backend';
import { inferenceBackendConformance, tensorValues } from '@arteria/testing';
import { tinyClassifier } from './tiny-model.js';

let dir: string;
let model: ModelRef;
let backend: OnnxRuntimeBackend;
const { bytes, reference } = tinyClassifier();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'arteria-ort-'));
  const file = path.join(dir, 'tiny.onnx');
  await writeFile(file, bytes);
  model = { name: 'tiny', digest: sha256Digest(bytes), path: file };
  backend = new OnnxRuntimeBackend({ intraOpThreads: 1, maxBatchFrames: 2 });
});

afterAll(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

inferenceBackendConformance('ONNX Runtime in process', () => ({
  backend,
  model,
  reference,
  refused: { model: { ...model, name: 'tampered', digest: `sha256:${'0'.repeat(64)}` }, code: 'CHECKSUM_MISMATCH' },
}));

describe('OnnxRuntimeBackend execution providers', () => {
  const input = { name: 'frames', type: 'float32' as const, dims: [1, 1, 4, 4], data: Float32Array.from({ length: 16 }, (_, i) => i / 16) };

  it('uses the first provider that loads, in the configured order, with the same results', async () => {
    const cpu = new OnnxRuntimeBackend();
    const preferring = new OnnxRuntimeBackend({ executionProviders: ['cuda', 'cpu'] });
    try {
      expect(await cpu.executionProvider(model)).toBe('cpu');
      const provider = await preferring.executionProvider(model);
      expect(['cuda', 'cpu']).toContain(provider);
      const [a] = await cpu.infer(model, [input]);
      const [b] = await preferring.infer(model, [input]);
      for (const [i, v] of tensorValues(a).entries()) expect(tensorValues(b)[i]).toBeCloseTo(v, 4);
      if (provider === 'cpu') {
        // No CUDA here: a list without a CPU fallback cannot load the model, and says why.
        const gpuOnly = new OnnxRuntimeBackend({ executionProviders: ['cuda'] });
        await expect(gpuOnly.load(model)).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE', message: expect.stringMatching(/with cuda: cuda: /) as string });
        await gpuOnly.close();
      }
    } finally {
      await cpu.close();
      await preferring.close();
    }
  });

  it("the runner's module applies the configured providers only to models whose manifest asks for a GPU", async () => {
    const options = optionsFromQuery(new URLSearchParams('executionProviders=cuda,cpu&intraOpThreads=1'));
    const plain = backendForModel(options, { gpu: false });
    const gpu = backendForModel(options, { gpu: true });
    try {
      expect(plain.config.executionProviders).toEqual(['cpu']);
      expect(gpu.config.executionProviders).toEqual(['cuda', 'cpu']);
      expect(() => new OnnxRuntimeBackend({ executionProviders: ['rocm' as 'cpu'] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
    } finally {
      await plain.close();
      await gpu.close();
    }
  });
});

describe('OnnxRuntimeBackend', () => {
  it('reuses one session per model digest', async () => {
    const b = new OnnxRuntimeBackend();
    try {
      await Promise.all([b.load(model), b.load(model), b.infer(model, [{ name: 'frames', type: 'float32', dims: [1, 1, 4, 4], data: new Float32Array(16) }])]);
      expect(await b.describe()).toHaveLength(1);
    } finally {
      await b.close();
    }
  });

  it('answers the same with frames split into batches as in one call', async () => {
    const whole = new OnnxRuntimeBackend({ maxBatchFrames: 0 });
    try {
      const input = { name: 'frames', type: 'float32' as const, dims: [5, 1, 6, 6], data: new Float32Array(5 * 36).map((_, i) => (i % 7) - 3) };
      const [a] = await whole.infer(model, [input]);
      const [b] = await backend.infer(model, [input]); // maxBatchFrames 2: three calls
      expect(b?.dims).toEqual([5, 2]);
      expect(tensorValues(b)).toEqual(tensorValues(a));
    } finally {
      await whole.close();
    }
  });

  it('reports a missing model file as MODEL_UNAVAILABLE and rejects unknown options', async () => {
    await expect(backend.load({ name: 'gone', digest: `sha256:${'f'.repeat(64)}`, path: path.join(dir, 'gone.onnx') })).rejects.toMatchObject({ code: 'MODEL_UNAVAILABLE' });
    expect(() => new OnnxRuntimeBackend({ threads: 2 } as never)).toThrow(/threads/);
  });

  it('refuses calls after close with ILLEGAL_STATE, and close is memoised', async () => {
    const b = new OnnxRuntimeBackend();
    await b.load(model);
    const closing = b.close();
    expect(b.close()).toBe(closing);
    await closing;
    await expect(b.load(model)).rejects.toMatchObject({ code: 'ILLEGAL_STATE', message: 'the ONNX Runtime backend is closed: cannot use model tiny' });
    await expect(b.infer(model, [])).rejects.toMatchObject({ code: 'ILLEGAL_STATE' });
    expect(await b.describe()).toEqual([]);
  });
});
