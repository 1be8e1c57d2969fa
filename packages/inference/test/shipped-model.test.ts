import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KServeModelServer, KServeV2Backend } from '@arteria/inference';
import { AlgorithmManifest } from '@arteria/sdk';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('the shipped balloon-inflation model in a Triton repository', () => {
  it('is served with the committed config.pbtxt, which matches the ONNX file', async () => {
    const algorithm = path.join(root, 'algorithms', 'balloon-inflation');
    const manifest = AlgorithmManifest.parse(JSON.parse(await readFile(path.join(algorithm, 'manifest.json'), 'utf8')));
    const model = manifest.model;
    if (!model) throw new Error('the balloon-inflation manifest names no model');
    const repo = await mkdtemp(path.join(tmpdir(), 'arteria-shipped-'));
    try {
      await mkdir(path.join(repo, model.name, '1'), { recursive: true });
      await copyFile(path.join(root, 'deploy', 'model-repository', model.name, 'config.pbtxt'), path.join(repo, model.name, 'config.pbtxt'));
      await copyFile(path.join(algorithm, model.file), path.join(repo, model.name, '1', 'model.onnx'));
      // Start checks the config's inputs and outputs against the ONNX file.
      const server = await KServeModelServer.start({ repository: repo, port: 0 });
      try {
        const client = new KServeV2Backend({ url: server.url, requireDigest: true });
        const description = await client.load({ name: model.name, digest: `sha256:${model.sha256}` });
        const input = description.inputs[0];
        if (!input) throw new Error('the model has no input');
        const dims = input.dims.map((d, i) => (i === 0 ? 100 : d)); // more than max_batch_size: split by the client
        const size = dims.reduce((a, b) => a * b, 1);
        const outputs = await client.infer({ name: model.name, digest: `sha256:${model.sha256}` }, [{ name: input.name, type: 'float32', dims, data: new Float32Array(size).fill(0.5) }]);
        expect(outputs[0]?.dims[0]).toBe(100);
      } finally {
        await server.close();
      }
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });
});
