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

/** Greedy one-to-one matching, best IoU first. */
export function scoreRun(truth: readonly Interval[], predicted: readonly Interval[]): RunScore {
  const pairs: { t: number; p: number; iou: number }[] = [];
  truth.forEach((a, t) => predicted.forEach((b, p) => {
    const iou = intervalIou(a, b);
    if (iou >= MATCH_IOU) pairs.push({ t, p, iou });
  }));
  pairs.sort((x, y) => y.iou - x.iou);
  const usedT = new Set<number>();
  const usedP = new Set<number>();
  const score: RunScore = { truePositives: 0, falsePositives: 0, falseNegatives: 0, onsetErrors: [], offsetErrors: [] };
  for (const { t, p } of pairs) {
    if (usedT.has(t) || usedP.has(p)) continue;
    usedT.add(t);
    usedP.add(p);
    score.truePositives++;
    score.onsetErrors.push(Math.abs(predicted[p]!.startFrame - truth[t]!.startFrame));
    score.offsetErrors.push(Math.abs(predicted[p]!.endFrame - truth[t]!.endFrame));
  }
  score.falsePositives = predicted.length - usedP.size;
  score.falseNegatives = truth.length - usedT.size;
  return score;
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
