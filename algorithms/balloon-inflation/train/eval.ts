import { readFileSync, writeFileSync } from 'node:fs';
import { EVAL_PROFILE, STRESS_PROFILE } from '@arteria/synth';
import { evaluate, metricsTables, type EvalJob } from './evaluate.js';
import { OnnxRuntimeBackend } from '@arteria/inference';

/**
 * `npm run eval`: held-out synthetic runs (seeds and parameter ranges never used in
 * training), each written as DICOM, decoded and run through the algorithm with ONNX
 * Runtime, as the platform does. A second, smaller set goes beyond every range (stress)
 * to show where detection breaks. Prints the metrics and writes them into MODEL_CARD.md.
 */
const RUNS_512 = Number(process.env.BALLOON_EVAL_RUNS ?? 160);
const RUNS_1024 = Number(process.env.BALLOON_EVAL_RUNS_1024 ?? 12);
const STRESS_RUNS = Number(process.env.BALLOON_STRESS_RUNS ?? 40);
const EVAL_SEED_BASE = 9_000_000;
const STRESS_SEED_BASE = 9_500_000;

// Compiled to train/dist/: the algorithm folder is two levels up.
const root = new URL('../../', import.meta.url);
const started = performance.now();
const seconds = (): string => ((performance.now() - started) / 1000).toFixed(0);
const progress = (total: number) => (done: number): void => {
  if (done % 20 === 0 || done === total) console.log(`  ${done}/${total} runs, ${seconds()} s`);
};
const range = (base: number, n: number, side: number): EvalJob[] => Array.from({ length: n }, (_, i) => ({ seed: base + i, side }));

const backend = new OnnxRuntimeBackend();
const jobs = [...range(EVAL_SEED_BASE, RUNS_512, 512), ...range(EVAL_SEED_BASE + 100_000, RUNS_1024, 1024)];
console.log(`held-out set: ${jobs.length} runs`);
const held = await evaluate(jobs, EVAL_PROFILE, backend, progress(jobs.length));
console.log(`stress set: ${STRESS_RUNS} runs`);
const stress = await evaluate(range(STRESS_SEED_BASE, STRESS_RUNS, 512), STRESS_PROFILE, backend, progress(STRESS_RUNS));
await backend.close();

const targetsMet = { f1: held.f1 >= 0.95, medianOnset: held.medianOnsetErrorFrames <= 2, falseEvents: held.falseEventsPerBalloonFreeRun <= 0.05 };
console.log(JSON.stringify({ heldOut: held, stress, targetsMet, seconds: Number(seconds()) }, null, 2));

const text = [
  `Measured by \`npm run eval\` on ${held.runs} held-out synthetic runs (${RUNS_512} at 512x512, ${RUNS_1024} at 1024x1024, ${held.frames} frames, seeds from ${EVAL_SEED_BASE}, evaluation ranges), each written as DICOM, decoded and run through ONNX Runtime.`,
  '',
  metricsTables(held, true),
  '',
  `Stress set, beyond the training and evaluation ranges (${stress.runs} runs at 512x512, 8-bit, dose 0.06-0.25, contrast strength 0.3-0.6, motion 1.8-3.5; seeds from ${STRESS_SEED_BASE}):`,
  '',
  metricsTables(stress, false),
].join('\n');
const cardUrl = new URL('MODEL_CARD.md', root);
const card = readFileSync(cardUrl, 'utf8');
const begin = '<!-- eval:begin -->';
const end = '<!-- eval:end -->';
const from = card.indexOf(begin);
const to = card.indexOf(end);
if (from < 0 || to < from) throw new Error('MODEL_CARD.md has no eval markers');
writeFileSync(cardUrl, `${card.slice(0, from + begin.length)}\n${text}\n${card.slice(to)}`);
console.log(`metrics written to MODEL_CARD.md in ${seconds()} s`);
