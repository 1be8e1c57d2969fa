import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames, synthesizeXaRun } from '@arteria/dicom';
import { KServeModelServer, sha256Digest, writeModelConfig, writeOnnxModel } from '@arteria/inference';
import { encodePayload } from '@arteria/protocol';
import { AlgorithmRegistry, AlgorithmRunner, kserveModuleUrl } from '@arteria/worker';
import type { S3Client } from '@aws-sdk/client-s3';
import type { TestDevice } from '@arteria/testing';
import { startPlatformWithDevice, tempDir } from './support/platform.js';

/** Mean of each frame, as an ONNX model (GlobalAveragePool) served by ONNX Runtime in the algorithm's thread. */
const model = writeOnnxModel({
  inputs: [{ name: 'frames', type: 'float32', dims: ['n', 1, 'h', 'w'] }],
  outputs: [{ name: 'means', type: 'float32', dims: ['n', 1] }],
  nodes: [
    { opType: 'GlobalAveragePool', inputs: ['frames'], outputs: ['pooled'] },
    { opType: 'Flatten', inputs: ['pooled'], outputs: ['means'], attributes: { axis: { type: 'int', value: 1 } } },
  ],
});

const ENTRY = `
export default {
  async run({ frames }, { inference }) {
    if (!inference) throw new Error('no inference backend in the context');
    const [model] = await inference.describe();
    const { frameCount: n, rows, columns } = frames;
    const data = Float32Array.from(frames.pixels);
    const [means] = await inference.infer(model, [{ name: 'frames', type: 'float32', dims: [n, 1, rows, columns], data }]);
    return { backend: inference.kind, model: model.digest, means: Array.from(means.data) };
  },
};
`;

async function writeAlgorithm(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  await writeFile(path.join(dir, 'lib', 'index.js'), ENTRY);
  await writeFile(path.join(dir, 'model.onnx'), model);
  const manifest = {
    name: 'frame-means',
    version: '1.0.0',
    title: 'Test fixture: frame means by ONNX',
    runtime: 'onnx',
    entry: 'lib/index.js',
    model: { name: 'frame-means', file: 'model.onnx', sha256: sha256Digest(model).slice('sha256:'.length) },
    input: { modalities: ['XA'], minFrames: 1, maxFrames: 100, maxRows: 512, maxColumns: 512 },
    outputSchema: { type: 'object', required: ['backend', 'model', 'means'] },
    resources: { memoryMb: 64, timeoutMs: 10_000, gpu: false },
    intendedUse: 'Exercises the inference path in tests; not for clinical use.',
    limitations: ['Test fixture only.'],
    regulatoryClass: 'none',
  };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
}

describe('embedded platform: an onnx algorithm', () => {
  let s3: S3Client;
  let device: TestDevice;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ s3, device, close: cleanup } = await startPlatformWithDevice('onnx', async (tmp) => {
      const algorithmDir = path.join(tmp, 'frame-means');
      await writeAlgorithm(algorithmDir);
      return { dataDir: path.join(tmp, 'data'), overrides: { algorithmDirs: [algorithmDir] } };
    }));
  });
  afterAll(async () => cleanup());

  it('gets context.inference backed by ONNX Runtime with its verified model, and the model computes', async () => {
    const run = synthesizeXaRun({ seed: 41, rows: 32, columns: 40, frames: 5, bitsStored: 8 });
    const request = await device.prepare(s3, 'arteria-runs', run.bytes, 'frame-means@^1');
    await device.publishRaw(encodePayload(request));
    const result = await device.next((r) => r.requestId === request.id);
    expect(result.status, JSON.stringify(result.error)).toBe('ok');
    const output = result.output as { backend: string; model: string; means: number[] };
    expect(output.backend).toBe('onnxruntime');
    expect(output.model).toBe(sha256Digest(model));
    expect(result.algorithm?.model?.digest).toBe(sha256Digest(model));
    const { frames } = decodeFrames(run.bytes);
    const plane = frames.rows * frames.columns;
    const expected = Array.from({ length: frames.frameCount }, (_, f) => Array.from(frames.pixels.subarray(f * plane, (f + 1) * plane)).reduce((a, b) => a + b, 0) / plane);
    expect(output.means).toHaveLength(5);
    output.means.forEach((m, f) => expect(m).toBeCloseTo(expected[f] ?? NaN, 2));
  });
});

describe('an onnx algorithm whose model runs on a KServe v2 server', () => {
  it('gets context.inference from the KServe client in its thread, checked against the served digest', async () => {
    const tmp = await tempDir('kserve-runner');
    const algorithmDir = path.join(tmp.dir, 'frame-means');
    await writeAlgorithm(algorithmDir);
    const repo = path.join(tmp.dir, 'repo');
    await mkdir(path.join(repo, 'frame-means', '1'), { recursive: true });
    await writeFile(path.join(repo, 'frame-means', '1', 'model.onnx'), model);
    const tensor = (name: string, dims: number[]): { name: string; type: 'float32'; dims: number[] } => ({ name, type: 'float32', dims });
    await writeFile(path.join(repo, 'frame-means', 'config.pbtxt'), writeModelConfig({ name: 'frame-means', maxBatchSize: 4, inputs: [tensor('frames', [1, -1, -1])], outputs: [tensor('means', [1])] }));
    const server = await KServeModelServer.start({ repository: repo, port: 0 });
    const runner = new AlgorithmRunner({ threadsPerAlgorithm: 1, inferenceModule: kserveModuleUrl({ url: server.url, requireDigest: true }) });
    try {
      const [algorithm] = (await AlgorithmRegistry.load([algorithmDir])).list();
      if (!algorithm) throw new Error('fixture algorithm not loaded');
      const run = synthesizeXaRun({ seed: 42, rows: 24, columns: 24, frames: 6, bitsStored: 8 });
      const { output } = await runner.run(algorithm, Buffer.from(run.bytes));
      const { frames } = decodeFrames(run.bytes);
      const plane = frames.rows * frames.columns;
      const result = output as { backend: string; model: string; means: number[] };
      expect(result.backend).toBe('kserve-v2');
      expect(result.model).toBe(sha256Digest(model));
      // Six frames over a max_batch_size of 4: the client split them into two requests.
      expect(result.means).toHaveLength(6);
      result.means.forEach((m, f) => expect(m).toBeCloseTo(Array.from(frames.pixels.subarray(f * plane, (f + 1) * plane)).reduce((a, b) => a + b, 0) / plane, 2));
    } finally {
      await runner.close();
      await server.close();
      await tmp.remove();
    }
  });
});
