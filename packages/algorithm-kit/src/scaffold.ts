/**
 * `arteria algorithm init`: a new algorithm package that passes its own tests. The
 * golden expectations are recorded by running the new package once through the same
 * checks `arteria algorithm test` makes, so the author starts from a green state and
 * every later change to an answer shows up as a reviewable diff of golden/cases.json.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ALGORITHM_NAME_PATTERN, ArteriaError } from '@arteria/protocol';
import { writeOnnxModel } from '@arteria/inference';
import { EVAL_FILE, EVAL_SCORER, GOLDEN_FILE } from './cases.js';
import * as t from './templates.js';
import { testAlgorithm, type TestReport } from './tester.js';

export interface InitOptions {
  /** Folder to create (must not exist, or be empty). */
  dir: string;
  /** Algorithm name (lower case, digits, '-'); default the folder's name. */
  name?: string;
  runtime?: t.Runtime;
  /** Inference module for the first test run (see TestOptions). */
  inferenceModule?: string;
}

export interface InitResult {
  dir: string;
  name: string;
  files: string[];
  /** The first `arteria algorithm test` of the new package (which records its golden outputs). */
  report: TestReport;
}

/**
 * The starter model: each frame's mean (GlobalAveragePool over [N, 1, rows, columns]),
 * a real ONNX graph that ONNX Runtime, Triton and KServe load, written here so a new
 * package needs no download.
 */
export function starterModel(): Uint8Array {
  return writeOnnxModel({
    graphName: 'frame_mean',
    producerName: 'arteria algorithm init',
    inputs: [{ name: t.MODEL_INPUT, type: 'float32', dims: ['batch', 1, 'height', 'width'] }],
    outputs: [{ name: t.MODEL_OUTPUT, type: 'float32', dims: ['batch', 1] }],
    nodes: [
      { opType: 'GlobalAveragePool', inputs: [t.MODEL_INPUT], outputs: ['pooled'] },
      { opType: 'Flatten', inputs: ['pooled'], outputs: [t.MODEL_OUTPUT], attributes: { axis: { type: 'int', value: 1 } } },
    ],
  });
}

async function assertEmptyOrAbsent(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  });
  if (entries.length > 0) throw new ArteriaError('CONFIG_INVALID', `${dir} already exists and is not empty; init writes a new package`);
}

export async function initAlgorithm(options: InitOptions): Promise<InitResult> {
  const dir = path.resolve(options.dir);
  const name = options.name ?? path.basename(dir);
  if (!ALGORITHM_NAME_PATTERN.test(name)) {
    throw new ArteriaError('CONFIG_INVALID', `algorithm name "${name}" must be lower-case letters, digits and '-', starting with a letter or digit, at most 64 characters`);
  }
  const runtime = options.runtime ?? 'node';
  await assertEmptyOrAbsent(dir);

  const files = new Map<string, string | Uint8Array>();
  let input: t.TemplateInput = { name, runtime };
  if (runtime === 'onnx') {
    const bytes = starterModel();
    const file = `model/${name}.onnx`;
    files.set(file, bytes);
    input = { ...input, model: { file, sha256: createHash('sha256').update(bytes).digest('hex') } };
  }
  files.set('manifest.json', t.manifest(input));
  files.set('package.json', t.packageJson(input));
  files.set('src/index.js', t.algorithmSource(input));
  files.set('model/README.md', t.modelReadme(input));
  files.set(GOLDEN_FILE, t.goldenCases());
  files.set(EVAL_FILE, t.evalDataset());
  files.set(EVAL_SCORER, t.EVAL_SCORE);
  files.set('MODEL_CARD.md', t.modelCard(input));
  files.set('README.md', t.readme(input));

  for (const [rel, content] of files) {
    const abs = path.join(dir, rel);
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, content, { flag: 'wx' });
  }
  const report = await testAlgorithm(dir, options.inferenceModule !== undefined ? { inferenceModule: options.inferenceModule } : {});
  return { dir, name, files: [...files.keys()].sort(), report };
}
