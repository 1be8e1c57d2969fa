import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OnnxRuntimeBackend } from '@arteria/inference';
import { EVENT_RULE } from '@arteria/balloon-inflation';
import { groupF1Svg, groupRows, tracesOf, tracesSvg } from './eval-charts.js';
import { evaluate, metricsOf, metricsTables } from './evaluate.js';

/**
 * `npm run eval`: the held-out set (its own seeds, and frame sizes, dose, densities,
 * encodings, motion and shutters beyond the training ranges) and the stress set (beyond
 * every training range), each run written as DICOM, decoded and run through the algorithm
 * with ONNX Runtime, as the platform does. The sets are rendered by train/py/gen.py
 * (Debian's python3 with numpy and scipy) when their folders hold no runs, or runs rendered
 * with other numpy or scipy versions than that python3's. Prints the metrics
 * and writes them into MODEL_CARD.md.
 */
const HELDOUT_RUNS = Number(process.env.BALLOON_EVAL_RUNS ?? 72);
const STRESS_RUNS = Number(process.env.BALLOON_STRESS_RUNS ?? 30);
const data = process.env.BALLOON_EVAL_DATA ?? '/tmp/arteria-balloon-eval';

// Compiled to train/dist/: the algorithm folder is two levels up.
const root = new URL('../../', import.meta.url);
const started = performance.now();
const seconds = (): string => ((performance.now() - started) / 1000).toFixed(0);
const progress = (done: number, total: number): void => {
  if (done % 10 === 0 || done === total) console.log(`  ${done}/${total} runs, ${seconds()} s`);
};

const PYTHON = '/usr/bin/python3';
const GEN = fileURLToPath(new URL('py/gen.py', root.href + 'train/'));
/** The numpy and scipy versions Debian's python3 renders with: the same seeds give other runs under others. */
const renderer = JSON.parse(execFileSync(PYTHON, [GEN, 'renderer'], { encoding: 'utf8' })) as Record<string, string>;
const versions = (r: Record<string, string>): string => `numpy ${r['numpy']}, scipy ${r['scipy']}`;

function ensure(set: 'heldout' | 'stress', runs: number): string {
  const folder = `${data}/${set}`;
  const described = existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith('.json')) : [];
  const metas = described.map((f) => JSON.parse(readFileSync(`${folder}/${f}`, 'utf8')) as { visibleStretches?: unknown; renderer?: Record<string, string> });
  // A set rendered before the true events were counted one per inflation has runs without
  // `visibleStretches`: its events are the older counting's, so it is rendered again (the same
  // seeds give the same frames). So is a set rendered with other numpy or scipy versions (or
  // before descriptions recorded them): its runs are another draw than the figures' own.
  const older = metas.some((m) => m.visibleStretches === undefined);
  const other = metas.find((m) => m.renderer === undefined || versions(m.renderer) !== versions(renderer));
  if (described.length === 0 || older || other !== undefined) {
    const why = older ? ' again: it was rendered before true events were counted one per inflation' : other !== undefined ? ` again: it was rendered with ${other.renderer === undefined ? 'unrecorded numpy and scipy versions' : versions(other.renderer)}, this python3 has ${versions(renderer)}` : '';
    console.log(`rendering the ${set} set (${runs} runs) into ${folder}${why}`);
    execFileSync(PYTHON, [GEN, set, folder, '0', String(runs)], { stdio: 'inherit' });
  }
  return folder;
}

const backend = new OnnxRuntimeBackend();
console.log('held-out set');
const heldRuns = await evaluate(ensure('heldout', HELDOUT_RUNS), backend, progress);
console.log('stress set');
const stressRuns = await evaluate(ensure('stress', STRESS_RUNS), backend, progress);
await backend.close();
const held = metricsOf(heldRuns);
const stress = metricsOf(stressRuns);

const TARGETS = { f1: 0.95, confounderF1: 0.9 };
const confounderF1 = Object.values(held.groups['confounder'] ?? {}).map((g) => g.f1 ?? 1);
const targetsMet = {
  f1: held.f1 >= TARGETS.f1,
  medianOnset: held.medianOnsetErrorFrames <= 2,
  falseEvents: held.falseEventsPerBalloonFreeRun <= 0.05,
  confounders: confounderF1.every((f) => f >= TARGETS.confounderF1),
};

// The pictures beside the card (eval/): group F1 against the targets, and the runs it got wrong.
const charts = new URL('eval/', root);
mkdirSync(charts, { recursive: true });
const thresholds = [EVENT_RULE.inflatedThreshold, EVENT_RULE.eventPeakThreshold];
writeFileSync(new URL('heldout-groups.svg', charts), groupF1Svg(groupRows(held), TARGETS, `Held-out set: event F1 by group (${held.runs} runs)`));
writeFileSync(new URL('heldout-errors.svg', charts), tracesSvg(tracesOf(heldRuns), thresholds, 'Held-out runs with a missed or a false event'));
writeFileSync(new URL('stress-errors.svg', charts), tracesSvg(tracesOf(stressRuns), thresholds, 'Stress runs with a missed or a false event'));
console.log(`charts written to ${fileURLToPath(charts)}: heldout-groups.svg, heldout-errors.svg, stress-errors.svg`);
console.log(JSON.stringify({ heldOut: held, stress, targetsMet, renderer, seconds: Number(seconds()) }, null, 2));

const text = [
  `Measured by \`npm run eval\` on ${held.runs} held-out runs (${held.frames} frames; seeds of its own from 7000000; frame sizes 384/512/768 px, which training never saw; dose, body thickness, densities, gamma curves, motion and shutters partly beyond the training ranges; ${held.balloonFreeRuns} of them without an inflation; rendered with ${versions(renderer)}, whose runs these seeds are), each written as DICOM, decoded and run through ONNX Runtime.`,
  '',
  '![Event F1 by group, with 95 % intervals, against the targets](eval/heldout-groups.svg)',
  '',
  metricsTables(held, true),
  '',
  'Every held-out run with a missed or a false event, with the per-frame inflated probability: [eval/heldout-errors.svg](eval/heldout-errors.svg); the stress runs: [eval/stress-errors.svg](eval/stress-errors.svg).',
  '',
  `Stress set, beyond every training range (${stress.runs} runs: very low dose, thick body, faint balloon and markers, strong motion, wide shutters, strong scatter; seeds from 8000000; as in the held-out set, an inflation counts where both marker bands are in the exposed field):`,
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
