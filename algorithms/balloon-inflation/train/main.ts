import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mulberry32, uniform } from '@arteria/dicom';
import { PATCH_COLUMNS, PATCH_ROWS } from '@arteria/balloon-inflation';
import { TRAIN_PROFILE } from '@arteria/synth';
import { buildDataset, flipAugment } from './dataset.js';
import { mlpToOnnx } from './export-onnx.js';
import { createMlp, predict, trainMlp } from './mlp.js';

/**
 * `npm run train`: renders synthetic training runs, trains the perceptron, writes the ONNX
 * model into the algorithm folder and pins its SHA-256 in the manifest. Deterministic.
 */
const TRAIN_RUNS = Number(process.env.BALLOON_TRAIN_RUNS ?? 480);
const VALIDATION_RUNS = 60;
const HIDDEN = 32;
const EPOCHS = Number(process.env.BALLOON_TRAIN_EPOCHS ?? 25);
const TRAIN_SEED_BASE = 1_000;
const VALIDATION_SEED_BASE = 500_000;

// Compiled to train/dist/: the algorithm folder is two levels up.
const root = new URL('../../', import.meta.url);
const started = performance.now();
const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
const seeds = (base: number, n: number): number[] => Array.from({ length: n }, (_, i) => base + i);

console.log(`rendering ${TRAIN_RUNS} training and ${VALIDATION_RUNS} validation runs`);
const train = buildDataset({ seeds: seeds(TRAIN_SEED_BASE, TRAIN_RUNS), profile: TRAIN_PROFILE, fullSizeShare: 0.15, onRun: (n) => n % 100 === 0 && console.log(`  ${n} runs, ${seconds()} s`) });
const validation = buildDataset({ seeds: seeds(VALIDATION_SEED_BASE, VALIDATION_RUNS), profile: TRAIN_PROFILE, fullSizeShare: 0.15 });
const positives = train.y.reduce((a, b) => a + b, 0);
console.log(`training patches: ${train.y.length} (${positives} inflated) from ${train.frames} frames; validation patches: ${validation.y.length}; ${seconds()} s`);

const rand = uniform(mulberry32(20240601));
const model = createMlp(PATCH_ROWS * PATCH_COLUMNS, HIDDEN, rand);
trainMlp(model, train.x, train.y, {
  epochs: EPOCHS,
  batchSize: 64,
  learningRate: 1e-3,
  weightDecay: 1e-4,
  rand,
  augment: flipAugment(rand),
  onEpoch: (epoch, loss) => {
    if (epoch % 5 === 4 || epoch === EPOCHS - 1) console.log(`  epoch ${epoch + 1}: loss ${loss.toFixed(4)}, validation accuracy ${accuracy().toFixed(4)}, ${seconds()} s`);
  },
});

function accuracy(): number {
  const p = predict(model, validation.x, validation.y.length);
  let right = 0;
  p.forEach((v, i) => (right += (v >= 0.5 ? 1 : 0) === validation.y[i] ? 1 : 0));
  return right / Math.max(1, p.length);
}

const manifestUrl = new URL('manifest.json', root);
const manifest = JSON.parse(readFileSync(manifestUrl, 'utf8')) as { model: { name: string; file: string; sha256: string } };
const bytes = mlpToOnnx(model, {
  training_runs: String(TRAIN_RUNS),
  training_patches: String(train.y.length),
  epochs: String(EPOCHS),
  validation_accuracy: accuracy().toFixed(4),
});
writeFileSync(new URL(manifest.model.file, root), bytes);
manifest.model.sha256 = createHash('sha256').update(bytes).digest('hex');
writeFileSync(manifestUrl, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`wrote ${manifest.model.file} (${bytes.length} bytes, sha256 ${manifest.model.sha256}) in ${seconds()} s`);
