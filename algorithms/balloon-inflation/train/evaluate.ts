import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrames, writeXaRun } from '@arteria/dicom';
import type { InferenceBackend } from '@arteria/sdk';
import balloonInflation from '@arteria/balloon-inflation';
import { eventF1Interval, quantile, scoreRun, type RunCounts, type RunScore } from './metrics.js';

/** One generated run as train/py/gen.py describes it. */
export interface RunMeta {
  seed: number;
  kind: string;
  tags: string[];
  size: number;
  frames: number;
  fps: number;
  bits: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  encoding: string;
  inflations: number;
  spacing: number;
  events: [number, number][];
  visibleFrames: number;
  /** Photons per 128-grid pixel, unattenuated. */
  dose: number;
}

export interface GroupScore {
  runs: number;
  events: number;
  detected: number;
  falseEvents: number;
  f1: number | null;
}

export interface EvalMetrics {
  runs: number;
  frames: number;
  events: number;
  precision: number;
  recall: number;
  f1: number;
  /** 95 % bootstrap interval of the event F1 over the runs (`eventF1Interval`). */
  f1Interval: [number, number];
  medianOnsetErrorFrames: number;
  p90OnsetErrorFrames: number;
  medianOffsetErrorFrames: number;
  p90OffsetErrorFrames: number;
  balloonFreeRuns: number;
  falseEventsBalloonFree: number;
  falseEventsPerBalloonFreeRun: number;
  /** Runs whose balloon status (not visible / visible / inflated) was right. */
  statusCorrect: number;
  groups: Record<string, Record<string, GroupScore>>;
}

/** The runs of a data set folder, in name order. */
export function runsIn(folder: string): { name: string; meta: RunMeta }[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f.slice(0, -5), meta: JSON.parse(readFileSync(join(folder, f), 'utf8')) as RunMeta }));
}

/** The run as the C-arm would send it: a multi-frame XA file (8-bit runs with 8-bit pixels). */
export function dicomOf(folder: string, name: string, meta: RunMeta): Buffer {
  const raw = readFileSync(join(folder, `${name}.u16`));
  const wide = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
  const pixels = meta.bits <= 8 ? Uint8Array.from(wide) : Uint16Array.from(wide);
  return writeXaRun({ rows: meta.size, columns: meta.size, frames: meta.frames, pixels, bitsStored: meta.bits, photometric: meta.photometric, frameTimeMs: 1000 / meta.fps, studyDate: '20240101', studyTime: '120000' });
}

const groupKeys = (m: RunMeta): Record<string, string> => ({
  'frame size': `${m.size} px`,
  'bits stored': `${m.bits}`,
  'frame rate': `${m.fps} fps`,
  inflations: `${m.inflations}`,
  kind: m.kind,
  confounder: m.tags.filter((t) => t !== 'inflation').join('+') || 'none',
  encoding: `${m.encoding} ${m.photometric}`,
  dose: m.dose < 500 ? 'under 500 photons' : m.dose < 5000 ? '500-5000 photons' : '5000 photons or more',
  'inflated share of the run': m.events.length === 0 ? 'none' : inflatedShare(m) > 0.6 ? 'over 60%' : 'up to 60%',
});

/** Share of the run's frames that are in an inflation. */
const inflatedShare = (m: RunMeta): number => m.events.reduce((n, [a, b]) => n + b - a + 1, 0) / m.frames;

/** Each run written as DICOM, decoded and run through the algorithm, as the platform does; then scored. */
export async function evaluate(folder: string, inference: InferenceBackend, onProgress?: (done: number, total: number) => void): Promise<EvalMetrics> {
  const runs = runsIn(folder);
  const totals: RunScore = { truePositives: 0, falsePositives: 0, falseNegatives: 0, onsetErrors: [], offsetErrors: [] };
  const groups = new Map<string, Map<string, GroupScore>>();
  let balloonFreeRuns = 0;
  let falseEventsBalloonFree = 0;
  let frames = 0;
  let statusCorrect = 0;
  const perRun: RunCounts[] = [];
  for (const [i, { name, meta }] of runs.entries()) {
    const { header, frames: stack } = decodeFrames(dicomOf(folder, name, meta));
    const output = await balloonInflation.run({ header, frames: stack }, { signal: AbortSignal.timeout(300_000), inference });
    const truth = meta.events.map(([startFrame, endFrame]) => ({ startFrame, endFrame }));
    const score = scoreRun(truth, output.events);
    perRun.push(score);
    totals.truePositives += score.truePositives;
    totals.falsePositives += score.falsePositives;
    totals.falseNegatives += score.falseNegatives;
    totals.onsetErrors.push(...score.onsetErrors);
    totals.offsetErrors.push(...score.offsetErrors);
    frames += meta.frames;
    if (truth.length === 0) {
      balloonFreeRuns++;
      falseEventsBalloonFree += output.events.length;
    }
    const status = truth.length > 0 ? 'inflated' : meta.visibleFrames >= 3 ? 'visible' : 'not-visible';
    if (status === output.balloon) statusCorrect++;
    for (const [group, key] of Object.entries(groupKeys(meta))) {
      const byKey = groups.get(group) ?? new Map<string, GroupScore>();
      const g = byKey.get(key) ?? { runs: 0, events: 0, detected: 0, falseEvents: 0, f1: null };
      g.runs++;
      g.events += truth.length;
      g.detected += score.truePositives;
      g.falseEvents += score.falsePositives;
      byKey.set(key, g);
      groups.set(group, byKey);
    }
    onProgress?.(i + 1, runs.length);
  }
  const precision = totals.truePositives / Math.max(1, totals.truePositives + totals.falsePositives);
  const recall = totals.truePositives / Math.max(1, totals.truePositives + totals.falseNegatives);
  const f1Of = (g: GroupScore): number | null => (g.events === 0 ? null : (2 * g.detected) / (g.events + g.detected + g.falseEvents));
  return {
    runs: runs.length,
    frames,
    events: totals.truePositives + totals.falseNegatives,
    precision,
    recall,
    f1: (2 * precision * recall) / Math.max(1e-9, precision + recall),
    f1Interval: eventF1Interval(perRun),
    medianOnsetErrorFrames: quantile(totals.onsetErrors, 0.5),
    p90OnsetErrorFrames: quantile(totals.onsetErrors, 0.9),
    medianOffsetErrorFrames: quantile(totals.offsetErrors, 0.5),
    p90OffsetErrorFrames: quantile(totals.offsetErrors, 0.9),
    balloonFreeRuns,
    falseEventsBalloonFree,
    falseEventsPerBalloonFreeRun: falseEventsBalloonFree / Math.max(1, balloonFreeRuns),
    statusCorrect,
    groups: Object.fromEntries(
      [...groups.entries()].map(([group, byKey]) => [group, Object.fromEntries([...byKey.entries()].sort().map(([k, g]) => [k, { ...g, f1: f1Of(g) }]))]),
    ),
  };
}

/** The metrics as Markdown tables for the model card. */
export function metricsTables(m: EvalMetrics, withTargets: boolean): string {
  const f = (v: number): string => v.toFixed(3);
  const target = (t: string): string => (withTargets ? t : '');
  // Errors are measured on matched events only: none matched, none to show.
  const frames = (v: number): string => (Number.isNaN(v) ? '-' : String(v));
  const lines = [
    '| Metric | Value | Target |',
    '| --- | --- | --- |',
    `| Event precision | ${f(m.precision)} | |`,
    `| Event recall | ${f(m.recall)} | |`,
    `| Event F1 (IoU >= 0.5) | ${f(m.f1)} (95 % interval ${f(m.f1Interval[0])}-${f(m.f1Interval[1])}, runs resampled) | ${target('>= 0.95')} |`,
    `| Onset error, median / 90th percentile (frames) | ${frames(m.medianOnsetErrorFrames)} / ${frames(m.p90OnsetErrorFrames)} | ${target('median <= 2')} |`,
    `| Offset error, median / 90th percentile (frames) | ${frames(m.medianOffsetErrorFrames)} / ${frames(m.p90OffsetErrorFrames)} | |`,
    `| False events per balloon-free run | ${f(m.falseEventsPerBalloonFreeRun)} (${m.falseEventsBalloonFree} in ${m.balloonFreeRuns} runs) | ${target('<= 0.05')} |`,
    `| Balloon status right (not visible / visible / inflated) | ${m.statusCorrect} of ${m.runs} runs | |`,
  ];
  for (const [group, byKey] of Object.entries(m.groups)) {
    lines.push('', `| By ${group} | Runs | True events | Detected | False events | F1 |`, '| --- | --- | --- | --- | --- | --- |');
    for (const [key, g] of Object.entries(byKey)) lines.push(`| ${key} | ${g.runs} | ${g.events} | ${g.detected} | ${g.falseEvents} | ${g.f1 === null ? '-' : f(g.f1)} |`);
  }
  return lines.join('\n');
}
