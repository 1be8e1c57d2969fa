import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrames, writeXaRun } from '@arteria/dicom';
import type { InferenceBackend } from '@arteria/sdk';
import balloonInflation, { frameProbabilities, shippedModel, type BalloonStatus, type InflationEvent } from '@arteria/balloon-inflation';
import { eventF1, eventF1Interval, quantile, scoreRun, summedCounts, type Interval, type RunScore } from './metrics.js';

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
  /** 95 % bootstrap interval of the group's F1 over its runs; null with the F1. */
  f1Interval: [number, number] | null;
}

/** One run as the evaluation saw it. */
export interface RunRecord {
  name: string;
  meta: RunMeta;
  score: RunScore;
  /** The events the algorithm reported. */
  events: InflationEvent[];
  balloon: BalloonStatus;
  /** Per-frame inflated probability, kept for the runs it got wrong (missed or false events). */
  inflated?: number[];
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

/**
 * Each run written as DICOM, decoded and run through the algorithm, as the platform does. For
 * a run it got wrong, the model's per-frame probabilities are read again, for the charts.
 */
export async function evaluate(folder: string, inference: InferenceBackend, onProgress?: (done: number, total: number) => void): Promise<RunRecord[]> {
  const runs = runsIn(folder);
  const records: RunRecord[] = [];
  for (const [i, { name, meta }] of runs.entries()) {
    const input = decodeFrames(dicomOf(folder, name, meta));
    const signal = AbortSignal.timeout(300_000);
    const output = await balloonInflation.run(input, { signal, inference });
    const score = scoreRun(truthOf(meta), output.events);
    const record: RunRecord = { name, meta, score, events: output.events, balloon: output.balloon };
    if (score.falseNegatives + score.falsePositives > 0) record.inflated = (await frameProbabilities(input, inference, shippedModel(), signal)).inflated;
    records.push(record);
    onProgress?.(i + 1, runs.length);
  }
  return records;
}

/** The true inflations of a run. */
export const truthOf = (meta: RunMeta): Interval[] => meta.events.map(([startFrame, endFrame]) => ({ startFrame, endFrame }));

/** The metrics of evaluated runs, overall and by group. */
export function metricsOf(records: readonly RunRecord[]): EvalMetrics {
  const scores = records.map((r) => r.score);
  const { truePositives: detected, falsePositives: falseEvents, falseNegatives: missed } = summedCounts(scores);
  const onsetErrors = scores.flatMap((s) => s.onsetErrors);
  const offsetErrors = scores.flatMap((s) => s.offsetErrors);
  const balloonFree = records.filter((r) => r.meta.events.length === 0);
  const falseEventsBalloonFree = balloonFree.reduce((n, r) => n + r.events.length, 0);
  const groups = new Map<string, Map<string, RunScore[]>>();
  for (const r of records) {
    for (const [group, key] of Object.entries(groupKeys(r.meta))) {
      const byKey = groups.get(group) ?? new Map<string, RunScore[]>();
      byKey.set(key, [...(byKey.get(key) ?? []), r.score]);
      groups.set(group, byKey);
    }
  }
  const groupScore = (s: RunScore[]): GroupScore => {
    const t = summedCounts(s);
    const events = t.truePositives + t.falseNegatives;
    return { runs: s.length, events, detected: t.truePositives, falseEvents: t.falsePositives, f1: events === 0 ? null : eventF1(s), f1Interval: events === 0 ? null : eventF1Interval(s) };
  };
  return {
    runs: records.length,
    frames: records.reduce((n, r) => n + r.meta.frames, 0),
    events: detected + missed,
    precision: detected / Math.max(1, detected + falseEvents),
    recall: detected / Math.max(1, detected + missed),
    f1: eventF1(scores),
    f1Interval: eventF1Interval(scores),
    medianOnsetErrorFrames: quantile(onsetErrors, 0.5),
    p90OnsetErrorFrames: quantile(onsetErrors, 0.9),
    medianOffsetErrorFrames: quantile(offsetErrors, 0.5),
    p90OffsetErrorFrames: quantile(offsetErrors, 0.9),
    balloonFreeRuns: balloonFree.length,
    falseEventsBalloonFree,
    falseEventsPerBalloonFreeRun: falseEventsBalloonFree / Math.max(1, balloonFree.length),
    statusCorrect: records.filter((r) => r.balloon === trueStatus(r.meta)).length,
    groups: Object.fromEntries([...groups.entries()].map(([group, byKey]) => [group, Object.fromEntries([...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, g]) => [k, groupScore(g)]))])),
  };
}

/** What the balloon status should say: a balloon counts as visible in at least 3 frames. */
const trueStatus = (meta: RunMeta): BalloonStatus => (meta.events.length > 0 ? 'inflated' : meta.visibleFrames >= 3 ? 'visible' : 'not-visible');

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
    lines.push('', `| By ${group} | Runs | True events | Detected | False events | F1 | 95 % interval |`, '| --- | --- | --- | --- | --- | --- | --- |');
    for (const [key, g] of Object.entries(byKey)) lines.push(`| ${key} | ${g.runs} | ${g.events} | ${g.detected} | ${g.falseEvents} | ${g.f1 === null ? '-' : f(g.f1)} | ${g.f1Interval === null ? '-' : `${f(g.f1Interval[0])}-${f(g.f1Interval[1])}`} |`);
  }
  return lines.join('\n');
}
