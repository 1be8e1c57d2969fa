/**
 * A Triton-compatible model repository: `<repo>/<model>/config.pbtxt` and
 * `<repo>/<model>/<version>/model.onnx`. Every version found is served; a request
 * without a version gets the highest, as with Triton's default version policy.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError } from '@arteria/protocol';
import type { ModelDescription, ModelRef } from '@arteria/sdk';
import { sha256Digest } from '../model-digest.js';
import { parseModelConfig, type TritonModelConfig } from './model-config.js';

export interface RepositoryModel {
  config: TritonModelConfig;
  /** Version label -> model file, highest version last. */
  versions: Map<string, ModelRef & { path: string }>;
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Reads the repository; a model folder without config.pbtxt or versions is an error. */
export async function readModelRepository(root: string): Promise<Map<string, RepositoryModel>> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `model repository ${root} cannot be read`, { cause: err });
  }
  const models = new Map<string, RepositoryModel>();
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.join(root, entry.name);
    let text: string;
    try {
      text = await readFile(path.join(dir, 'config.pbtxt'), 'utf8');
    } catch (err) {
      throw new ArteriaError('CONFIG_INVALID', `model ${entry.name}: ${dir}/config.pbtxt cannot be read`, { cause: err });
    }
    const config = parseModelConfig(text, entry.name);
    const versionDirs = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && /^\d+$/.test(e.name))
      .map((e) => e.name)
      .sort((a, b) => Number(a) - Number(b));
    const versions = new Map<string, ModelRef & { path: string }>();
    for (const version of versionDirs) {
      const file = path.join(dir, version, config.defaultModelFilename);
      if (!(await exists(file))) continue;
      versions.set(version, { name: config.name, digest: sha256Digest(await readFile(file)), path: file });
    }
    if (versions.size === 0) throw new ArteriaError('CONFIG_INVALID', `model ${entry.name}: no <version>/${config.defaultModelFilename} in ${dir}`);
    models.set(config.name, { config, versions });
  }
  return models;
}

/** Checks the config against what the ONNX file declares, so a wrong config fails at start, not per request. */
export function checkConfigMatchesModel(config: TritonModelConfig, model: ModelDescription): void {
  const batch = config.maxBatchSize > 0 ? 1 : 0;
  const check = (kind: 'input' | 'output', declared: TritonModelConfig['inputs'], actual: ModelDescription['inputs']): void => {
    for (const t of declared) {
      const found = actual.find((a) => a.name === t.name);
      if (!found) throw new ArteriaError('CONFIG_INVALID', `model ${config.name}: config.pbtxt ${kind} ${t.name} is not in the ONNX file (${actual.map((a) => a.name).join(', ')})`);
      if (found.type !== t.type) throw new ArteriaError('CONFIG_INVALID', `model ${config.name}: ${kind} ${t.name} is ${found.type} in the ONNX file, ${t.type} in config.pbtxt`);
      const dims = found.dims.slice(batch);
      const fits = dims.length === t.dims.length && dims.every((d, i) => d === -1 || t.dims[i] === -1 || d === t.dims[i]);
      if (!fits) {
        throw new ArteriaError('CONFIG_INVALID', `model ${config.name}: ${kind} ${t.name} has dims [${found.dims.join(', ')}] in the ONNX file; config.pbtxt says [${t.dims.join(', ')}]${batch ? ' after the batch dimension' : ''}`);
      }
    }
  };
  check('input', config.inputs, model.inputs);
  check('output', config.outputs, model.outputs);
}
