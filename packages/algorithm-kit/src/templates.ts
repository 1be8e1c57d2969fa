/**
 * The files `arteria algorithm init` writes. The starter algorithm finds the frame where
 * a run is darkest relative to its first frame (where contrast fills the vessels), a
 * task small enough to read in one sitting and real enough to evaluate on synthetic runs
 * whose contrast timing is known. Code is plain JavaScript (ES modules, JSDoc types) so a
 * new package runs without a build step; TypeScript works too (see docs/algorithms.md).
 */
export type Runtime = 'node' | 'onnx';

export interface TemplateInput {
  name: string;
  runtime: Runtime;
  /** Model file name and SHA-256, for the onnx runtime. */
  model?: { file: string; sha256: string };
}

export const MODEL_INPUT = 'frames';
export const MODEL_OUTPUT = 'mean';

const OUTPUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  required: ['frames', 'frameTimeMs', 'peakFrame', 'peakMs', 'darkening', 'curve'],
  properties: {
    frames: { type: 'integer', minimum: 1 },
    frameTimeMs: { type: 'number', exclusiveMinimum: 0 },
    peakFrame: { type: 'integer', minimum: 0, description: 'Frame darkest relative to the first frame (0-based).' },
    peakMs: { type: 'number', minimum: 0, description: 'peakFrame in milliseconds from the first frame.' },
    darkening: { type: 'number', minimum: 0, maximum: 1, description: 'How much darker the peak frame is than the first, as a share of its brightness.' },
    curve: { type: 'array', maxItems: 64, items: { type: 'number' }, description: 'Mean brightness (0..1) per frame, averaged into at most 64 points.' },
  },
};

export function manifest(t: TemplateInput): string {
  const m: Record<string, unknown> = {
    name: t.name,
    version: '0.1.0',
    title: `${t.name} (describe what it finds in one line)`,
    runtime: t.runtime,
    entry: 'src/index.js',
    ...(t.model ? { model: { name: t.name, file: t.model.file, sha256: t.model.sha256 } } : {}),
    input: { modalities: ['XA'], minFrames: 2, maxFrames: 1000, maxRows: 2048, maxColumns: 2048 },
    outputSchema: OUTPUT_SCHEMA,
    resources: { memoryMb: 256, timeoutMs: 10000, gpu: false },
    intendedUse: 'Describe who uses the output, for what decision, on which runs. Edit before release.',
    limitations: ['Starter template: validated on synthetic runs only.'],
    regulatoryClass: 'Research use only; not a medical device',
  };
  return `${JSON.stringify(m, null, 2)}\n`;
}

export function packageJson(t: TemplateInput): string {
  const p = {
    name: t.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `Arteria algorithm ${t.name}`,
    scripts: { test: 'arteria algorithm test .', eval: 'arteria algorithm eval .', pack: 'arteria algorithm pack .' },
    dependencies: {},
  };
  return `${JSON.stringify(p, null, 2)}\n`;
}

const SHARED_HELPERS = `/** Mean brightness per frame, 0 (black) to 1 (white), whatever the bit depth and photometric interpretation. */
function brightnessCurve(frames, means) {
  const max = 2 ** frames.bitsStored - 1;
  const invert = frames.photometric === 'MONOCHROME1';
  return means.map((m) => (invert ? 1 - m / max : m / max));
}

/** Averages \`values\` into at most \`points\` buckets, rounded so outputs stay byte-stable. */
function downsample(values, points) {
  const out = [];
  const size = Math.ceil(values.length / points);
  for (let i = 0; i < values.length; i += size) {
    const bucket = values.slice(i, i + size);
    out.push(round(bucket.reduce((a, b) => a + b, 0) / bucket.length));
  }
  return out;
}

const round = (v) => Number(v.toFixed(6));

/** The frame darkest relative to the first, and by how much. */
function answer(frames, brightness) {
  let peakFrame = 0;
  for (let f = 1; f < brightness.length; f++) if (brightness[f] < brightness[peakFrame]) peakFrame = f;
  const first = brightness[0] || 1;
  const darkening = Math.min(1, Math.max(0, (first - brightness[peakFrame]) / first));
  return {
    frames: frames.frameCount,
    frameTimeMs: round(frames.frameTimeMs),
    peakFrame,
    peakMs: round(peakFrame * frames.frameTimeMs),
    darkening: round(darkening),
    curve: downsample(brightness, 64),
  };
}
`;

const NODE_ALGORITHM = `// @ts-check
/**
 * The algorithm: the platform imports this module in an isolated thread and calls run()
 * once per DICOM run, with the decoded frames. Whatever run() returns must match
 * manifest.json's outputSchema (the platform checks every output against it).
 */

/** @type {import('@arteria/sdk').Algorithm} */
const algorithm = {
  run({ frames }, { signal }) {
    signal.throwIfAborted();
    const plane = frames.rows * frames.columns;
    const means = [];
    for (let f = 0; f < frames.frameCount; f++) {
      let sum = 0;
      const start = f * plane;
      for (let i = start; i < start + plane; i++) sum += frames.pixels[i];
      means.push(sum / plane);
    }
    return answer(frames, brightnessCurve(frames, means));
  },
};

export default algorithm;

${SHARED_HELPERS}`;

const ONNX_ALGORITHM = `// @ts-check
/**
 * The algorithm: the platform imports this module in an isolated thread and calls run()
 * once per DICOM run, with the decoded frames and an inference backend that has already
 * loaded the model named in manifest.json (ONNX Runtime in the thread, or a KServe v2 /
 * Triton server, as the platform is configured). Whatever run() returns must match
 * manifest.json's outputSchema (the platform checks every output against it).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MODEL_INPUT = '${MODEL_INPUT}';
const MODEL_OUTPUT = '${MODEL_OUTPUT}';

/** The model as manifest.json names and pins it: backends refuse a model whose digest differs. */
const manifest = JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8'));
const model = { name: manifest.model.name, digest: \`sha256:\${manifest.model.sha256}\`, path: fileURLToPath(new URL(\`../\${manifest.model.file}\`, import.meta.url)) };

/** @type {import('@arteria/sdk').Algorithm} */
const algorithm = {
  async run({ frames }, { signal, inference }) {
    if (inference === undefined) throw new Error('this algorithm needs an inference backend (runtime onnx)');
    // Pre-processing: frames as float32 [N, 1, rows, columns], the layout the model takes.
    const data = Float32Array.from(frames.pixels);
    const dims = [frames.frameCount, 1, frames.rows, frames.columns];
    const [out] = await inference.infer(model, [{ name: MODEL_INPUT, type: 'float32', dims, data }], signal);
    if (out === undefined || out.name !== MODEL_OUTPUT) throw new Error(\`the model returned no \${MODEL_OUTPUT}\`);
    // Post-processing: the model's per-frame means into the answer.
    return answer(frames, brightnessCurve(frames, Array.from(out.data, Number)));
  },
};

export default algorithm;

${SHARED_HELPERS}`;

export const algorithmSource = (t: TemplateInput): string => (t.runtime === 'onnx' ? ONNX_ALGORITHM : NODE_ALGORITHM);

/** Golden cases: expectations are recorded by init from the first run (review them). */
export function goldenCases(): string {
  const contrast = { startFrame: 4, peakFrame: 10, endFrame: 16 };
  const g = {
    $comment: 'Runs the algorithm must answer exactly so (numbers within tolerance). Re-record with `arteria algorithm test . --update` after an intended change, and review the diff.',
    cases: [
      { name: 'contrast peaking at frame 10', input: { xa: { seed: 11, rows: 128, columns: 128, frames: 20, contrast } }, tolerance: 1e-4 },
      { name: 'no contrast', input: { xa: { seed: 12, rows: 96, columns: 128, frames: 12, contrast: null } }, tolerance: 1e-4 },
      { name: 'MONOCHROME1, 8-bit', input: { xa: { seed: 13, rows: 64, columns: 64, frames: 16, bitsStored: 8, photometric: 'MONOCHROME1', contrast: { startFrame: 3, peakFrame: 7, endFrame: 12 } } }, tolerance: 1e-4 },
      { name: 'a single frame is below the input contract', input: { xa: { seed: 14, rows: 64, columns: 64, frames: 1 } }, expect: { error: 'UNSUPPORTED_DICOM' } },
    ],
  };
  return `${JSON.stringify(g, null, 2)}\n`;
}

/** A labelled evaluation set: synthetic runs whose contrast peak is known. */
export function evalDataset(): string {
  const items = Array.from({ length: 12 }, (_, i) => {
    const frames = 16 + (i % 4) * 4;
    const peakFrame = 3 + ((i * 5) % (frames - 8));
    return {
      name: `seed ${100 + i}`,
      input: { xa: { seed: 100 + i, rows: 96, columns: 96, frames, contrast: { startFrame: peakFrame - 2, peakFrame, endFrame: peakFrame + 4 } } },
      label: { peakFrame },
    };
  });
  const d = { $comment: 'Labelled runs for `arteria algorithm eval .`; eval/score.js compares each output with its label.', items };
  return `${JSON.stringify(d, null, 2)}\n`;
}

export const EVAL_SCORE = `// @ts-check
/**
 * Scores one output against its label; \`arteria algorithm eval .\` averages every number
 * returned here over eval/dataset.json and prints the table (paste it into MODEL_CARD.md).
 *
 * @param {{ peakFrame: number }} output
 * @param {{ peakFrame: number }} label
 * @returns {Record<string, number>}
 */
export default function score(output, label) {
  const error = Math.abs(output.peakFrame - label.peakFrame);
  return { 'peak frame error (frames)': error, 'peak within 2 frames': error <= 2 ? 1 : 0 };
}
`;

export function modelCard(t: TemplateInput): string {
  return `# Model card: ${t.name} 0.1.0

**Status: research use only.** Replace every paragraph below before a release; reviewers
read this file next to manifest.json.

## What it does
One paragraph: the input (modality, run type), the output (see manifest.json's
outputSchema) and who acts on it.

## How it works
Pre-processing, ${t.runtime === 'onnx' ? 'the model (`model/`, its inputs and outputs), ' : ''}post-processing.

## Intended use and limitations
Mirror manifest.json's \`intendedUse\` and \`limitations\`, with the reasons.

## Training data
Where it comes from, how many runs, how labels were made, what it does not cover.

## Evaluation
Paste the table printed by \`arteria algorithm eval .\` and say what the data set is.

| Metric | Value | Target |
| --- | --- | --- |
| | | |

## Versions
0.1.0: first version.
`;
}

export function modelReadme(t: TemplateInput): string {
  if (t.runtime === 'node') {
    return `# Model slot

This algorithm runs plain code (\`runtime: "node"\`) and has no model. To add one, put an
ONNX file here, set \`runtime\` to \`"onnx"\` and add \`model: { name, file, sha256 }\` to
manifest.json (\`sha256sum model/<file>.onnx\`); see docs/algorithms.md, "Bringing a
PyTorch model".
`;
  }
  return `# Model slot

\`${t.model?.file ?? 'model.onnx'}\` is the starter model: input \`${MODEL_INPUT}\` float32
[N, 1, rows, columns], output \`${MODEL_OUTPUT}\` float32 [N, 1] (each frame's mean). Replace it
with your own export (docs/algorithms.md, "Bringing a PyTorch model"), then update
\`model.sha256\` in manifest.json (\`sha256sum\`) and the tensor names in src/index.js.
`;
}

export function readme(t: TemplateInput): string {
  return `# ${t.name}

An Arteria algorithm (runtime \`${t.runtime}\`). Layout:

| path | what |
|---|---|
| manifest.json | name, version, input contract, output schema, resources |
| src/index.js | the algorithm (entry) |
| model/ | the model slot |
| golden/cases.json | runs with their expected answers |
| eval/ | labelled runs and the scoring function |
| MODEL_CARD.md | what reviewers read |

    arteria algorithm test .      # contract, golden cases, determinism, limits
    arteria algorithm eval .      # metrics on eval/dataset.json
    arteria algorithm pack .      # the artifact to ship, with its SBOM

See docs/algorithms.md in the Arteria repository.
`;
}
