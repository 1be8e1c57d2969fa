/**
 * Builds a Triton-compatible model repository from algorithm folders: each algorithm's
 * model (checked against its manifest's SHA-256) becomes `<repo>/<model>/1/model.onnx`
 * with a config.pbtxt generated from the ONNX file's own inputs and outputs.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError } from '@arteria/protocol';
import { AlgorithmManifest } from '@arteria/sdk';
import { OnnxRuntimeBackend } from '../onnx-runtime-backend.js';
import { writeModelConfig, type TritonTensorConfig } from './model-config.js';

export interface ExportedModel {
  name: string;
  digest: string;
  directory: string;
}

/**
 * `maxBatchSize` > 0 declares the first dimension of every tensor as the batch (frames),
 * which must then be dynamic (-1) in the ONNX file.
 */
export async function exportModelRepository(options: { algorithmDirs: readonly string[]; repository: string; maxBatchSize: number; version?: number }): Promise<ExportedModel[]> {
  const backend = new OnnxRuntimeBackend();
  const exported: ExportedModel[] = [];
  try {
    for (const dir of options.algorithmDirs) {
      const manifestPath = path.join(dir, 'manifest.json');
      const manifest = AlgorithmManifest.parse(JSON.parse(await readFile(manifestPath, 'utf8')));
      if (!manifest.model) throw new ArteriaError('CONFIG_INVALID', `${manifestPath}: algorithm ${manifest.name} has no model`);
      const source = path.resolve(dir, manifest.model.file);
      const ref = { name: manifest.model.name, digest: `sha256:${manifest.model.sha256}`, path: source };
      const description = await backend.load(ref); // verifies the file against the manifest's digest
      const batch = options.maxBatchSize > 0;
      const tensors = (list: typeof description.inputs): TritonTensorConfig[] =>
        list.map((t) => {
          if (batch && t.dims[0] !== -1) {
            throw new ArteriaError('CONFIG_INVALID', `model ${ref.name}: ${t.name} has a fixed first dimension (${String(t.dims[0])}); use max batch size 0`);
          }
          return { name: t.name, type: t.type, dims: t.dims.slice(batch ? 1 : 0) };
        });
      const config = writeModelConfig({ name: ref.name, maxBatchSize: options.maxBatchSize, inputs: tensors(description.inputs), outputs: tensors(description.outputs) });
      const modelDir = path.join(options.repository, ref.name);
      const versionDir = path.join(modelDir, String(options.version ?? 1));
      await mkdir(versionDir, { recursive: true });
      await copyFile(source, path.join(versionDir, 'model.onnx'));
      await writeFile(path.join(modelDir, 'config.pbtxt'), config);
      exported.push({ name: ref.name, digest: ref.digest, directory: modelDir });
    }
  } finally {
    await backend.close();
  }
  return exported;
}
