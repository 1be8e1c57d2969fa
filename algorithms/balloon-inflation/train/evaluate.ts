import { decodeFrames } from '@arteria/dicom';
import type { InferenceBackend } from '@arteria/sdk';
import balloonInflation, { type BalloonInflationOutput } from '@arteria/balloon-inflation';
import { sampleBalloonRun, synthesizeBalloonRun, type RunKind, type SampleProfile } from '@arteria/synth';
import { quantile, scoreRun, type RunScore } from './metrics.js';

export interface EvalJob {
  seed: number;
  side: number;
}

export interface KindScore {
  runs: number;
  events: number;
  detected: number;
  falseEvents: number;
}

export interface EvalMetrics {
  runs: number;
  frames: number;
  events: number;
  precision: number;
  recall: number;
  f1: number;
  medianOnsetErrorFrames: number;
  p90OnsetErrorFrames: number;
  medianOffsetErrorFrames: number;
  p90OffsetErrorFrames: number;
  balloonFreeRuns: number;
  falseEventsBalloonFree: number;
  falseEventsPerBalloonFreeRun: number;
  byKind: Record<string, KindScore>;
}

/** Each job's run written as DICOM, decoded and run through the algorithm, as the platform does; then scored. */
export async function evaluate(jobs: readonly EvalJob[], profile: SampleProfile, inference: InferenceBackend, onProgress?: (done: number) => void): Promise<EvalMetrics> {
  const totals: RunScore = { truePositives: 0, falsePositives: 0, falseNegatives: 0, onsetErrors: [], offsetErrors: [] };
  const byKind = new Map<RunKind, KindScore>();
  let balloonFreeRuns = 0;
  let falseEventsBalloonFree = 0;
  let frames = 0;
  for (const [i, { seed, side }] of jobs.entries()) {
    const { kind, options } = sampleBalloonRun({ seed, rows: side, columns: side, profile });
    const { bytes, truth } = synthesizeBalloonRun(options);
    const { header, frames: stack } = decodeFrames(bytes);
    const output: BalloonInflationOutput = await balloonInflation.run({ header, frames: stack }, { signal: AbortSignal.timeout(120_000), inference });
    const score = scoreRun(truth.events, output.events);
    totals.truePositives += score.truePositives;
    totals.falsePositives += score.falsePositives;
    totals.falseNegatives += score.falseNegatives;
    totals.onsetErrors.push(...score.onsetErrors);
    totals.offsetErrors.push(...score.offsetErrors);
    frames += options.frames;
    if (truth.events.length === 0) {
      balloonFreeRuns++;
      falseEventsBalloonFree += output.events.length;
    }
    const k = byKind.get(kind) ?? { runs: 0, events: 0, detected: 0, falseEvents: 0 };
    k.runs++;
    k.events += truth.events.length;
    k.detected += score.truePositives;
    k.falseEvents += score.falsePositives;
    byKind.set(kind, k);
    onProgress?.(i + 1);
  }
  const precision = totals.truePositives / Math.max(1, totals.truePositives + totals.falsePositives);
  const recall = totals.truePositives / Math.max(1, totals.truePositives + totals.falseNegatives);
  return {
    runs: jobs.length,
    frames,
    events: totals.truePositives + totals.falseNegatives,
    precision,
    recall,
    f1: (2 * precision * recall) / Math.max(1e-9, precision + recall),
    medianOnsetErrorFrames: quantile(totals.onsetErrors, 0.5),
    p90OnsetErrorFrames: quantile(totals.onsetErrors, 0.9),
    medianOffsetErrorFrames: quantile(totals.offsetErrors, 0.5),
    p90OffsetErrorFrames: quantile(totals.offsetErrors, 0.9),
    balloonFreeRuns,
    falseEventsBalloonFree,
    falseEventsPerBalloonFreeRun: falseEventsBalloonFree / Math.max(1, balloonFreeRuns),
    byKind: Object.fromEntries([...byKind.entries()].sort()),
  };
}

/** The metrics as Markdown tables for the model card. */
export function metricsTables(m: EvalMetrics, withTargets: boolean): string {
  const f = (v: number): string => v.toFixed(3);
  const target = (t: string): string => (withTargets ? t : '');
  return [
    '| Metric | Value | Target |',
    '| --- | --- | --- |',
    `| Event precision | ${f(m.precision)} | |`,
    `| Event recall | ${f(m.recall)} | |`,
    `| Event F1 (IoU >= 0.5) | ${f(m.f1)} | ${target('>= 0.95')} |`,
    `| Onset error, median / 90th percentile (frames) | ${m.medianOnsetErrorFrames} / ${m.p90OnsetErrorFrames} | ${target('median <= 2')} |`,
    `| Offset error, median / 90th percentile (frames) | ${m.medianOffsetErrorFrames} / ${m.p90OffsetErrorFrames} | |`,
    `| False events per balloon-free run | ${f(m.falseEventsPerBalloonFreeRun)} (${m.falseEventsBalloonFree} in ${m.balloonFreeRuns} runs) | ${target('<= 0.05')} |`,
    '',
    '| Kind of run | Runs | True events | Detected | False events |',
    '| --- | --- | --- | --- | --- |',
    ...Object.entries(m.byKind).map(([kind, k]) => `| ${kind} | ${k.runs} | ${k.events} | ${k.detected} | ${k.falseEvents} |`),
  ].join('\n');
}
