import { mulberry32, uniform } from '@arteria/dicom';

/** Event-level scoring: an event matches a true one when their frame intervals overlap with IoU >= 0.5. */
export interface Interval {
  startFrame: number;
  endFrame: number;
}

export interface RunScore {
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  onsetErrors: number[];
  offsetErrors: number[];
}

export const MATCH_IOU = 0.5;

export function intervalIou(a: Interval, b: Interval): number {
  const overlap = Math.min(a.endFrame, b.endFrame) - Math.max(a.startFrame, b.startFrame) + 1;
  if (overlap <= 0) return 0;
  const union = Math.max(a.endFrame, b.endFrame) - Math.min(a.startFrame, b.startFrame) + 1;
  return overlap / union;
}

/** Greedy one-to-one matching, best IoU first: [true event, predicted event] index pairs. */
export function matchEvents(truth: readonly Interval[], predicted: readonly Interval[]): [number, number][] {
  const pairs: { t: number; p: number; iou: number }[] = [];
  truth.forEach((a, t) => predicted.forEach((b, p) => {
    const iou = intervalIou(a, b);
    if (iou >= MATCH_IOU) pairs.push({ t, p, iou });
  }));
  pairs.sort((x, y) => y.iou - x.iou);
  const usedT = new Set<number>();
  const usedP = new Set<number>();
  const matched: [number, number][] = [];
  for (const { t, p } of pairs) {
    if (usedT.has(t) || usedP.has(p)) continue;
    usedT.add(t);
    usedP.add(p);
    matched.push([t, p]);
  }
  return matched;
}

/** Counts and edge errors of one run's events against the true ones (`matchEvents`). */
export function scoreRun(truth: readonly Interval[], predicted: readonly Interval[]): RunScore {
  const matched = matchEvents(truth, predicted);
  return {
    truePositives: matched.length,
    falsePositives: predicted.length - matched.length,
    falseNegatives: truth.length - matched.length,
    onsetErrors: matched.map(([t, p]) => Math.abs(predicted[p]!.startFrame - truth[t]!.startFrame)),
    offsetErrors: matched.map(([t, p]) => Math.abs(predicted[p]!.endFrame - truth[t]!.endFrame)),
  };
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Event counts of one run, as `scoreRun` gives them. */
export type RunCounts = Pick<RunScore, 'truePositives' | 'falsePositives' | 'falseNegatives'>;

/** The event counts of runs, summed. */
export function summedCounts(counts: readonly RunCounts[]): RunCounts {
  const sum: RunCounts = { truePositives: 0, falsePositives: 0, falseNegatives: 0 };
  for (const c of counts) {
    sum.truePositives += c.truePositives;
    sum.falsePositives += c.falsePositives;
    sum.falseNegatives += c.falseNegatives;
  }
  return sum;
}

/** Event F1 of summed counts (1 when there is nothing to find and nothing was found). */
export function eventF1(counts: readonly RunCounts[]): number {
  const { truePositives: tp, falsePositives, falseNegatives } = summedCounts(counts);
  const wrong = falsePositives + falseNegatives;
  return tp + wrong === 0 ? 1 : (2 * tp) / (2 * tp + wrong);
}

/**
 * A 95 % bootstrap interval of the event F1: the runs are drawn with replacement `rounds`
 * times (runs, not events, since the events of one run are not independent) and the 2.5th and
 * 97.5th percentiles of the resampled F1 are returned. On 40 events the interval is wide:
 * two detectors whose F1 differ by less than it cannot be told apart on this set. Seeded, so
 * the same runs always give the same interval.
 */
export function eventF1Interval(counts: readonly RunCounts[], rounds = 2000, seed = 1): [number, number] {
  if (counts.length === 0) return [NaN, NaN];
  const random = uniform(mulberry32(seed));
  const values = new Float64Array(rounds);
  const sample: RunCounts[] = new Array<RunCounts>(counts.length);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < counts.length; i++) sample[i] = counts[Math.floor(random() * counts.length)]!;
    values[r] = eventF1(sample);
  }
  values.sort();
  return [values[Math.floor(0.025 * (rounds - 1))]!, values[Math.ceil(0.975 * (rounds - 1))]!];
}
