import { readFileSync } from 'node:fs';
import { EVENT_RULE, inflationCandidates, type EventRule } from '@arteria/balloon-inflation';
import type { RunMeta } from './evaluate.js';
import { scoreRun } from './metrics.js';

/**
 * `node train/dist/tune.js PROBE.json`: the event rule (running median width, thresholds) on
 * per-frame probabilities that `probe.js` wrote for the validation split: event F1 and false
 * events per balloon-free run for the shipped rule and a grid around it, best first. Rules
 * are chosen here, never on the held-out set.
 */
interface Row {
  name: string;
  meta: RunMeta;
  visible: number[];
  inflated: number[];
}

const [file] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: tune.js PROBE.json');
const rows = JSON.parse(readFileSync(file, 'utf8')) as Row[];

function score(rule: EventRule): { f1: number; tp: number; fp: number; fn: number; falsePerFree: number } {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let free = 0;
  let freeFalse = 0;
  for (const { meta, inflated } of rows) {
    const truth = meta.events.map(([startFrame, endFrame]) => ({ startFrame, endFrame }));
    const { events } = inflationCandidates(inflated, 1000 / meta.fps, rule);
    const s = scoreRun(truth, events);
    tp += s.truePositives;
    fp += s.falsePositives;
    fn += s.falseNegatives;
    if (truth.length === 0) {
      free++;
      freeFalse += events.length;
    }
  }
  return { f1: (2 * tp) / Math.max(1, 2 * tp + fp + fn), tp, fp, fn, falsePerFree: freeFalse / Math.max(1, free) };
}

const results: { rule: EventRule; s: ReturnType<typeof score> }[] = [];
for (const medianFrames of [1, 3, 5, 7, 9]) {
  for (const inflatedThreshold of [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) {
    for (const eventPeakThreshold of [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]) {
      if (eventPeakThreshold < inflatedThreshold) continue;
      for (const minEventFrames of [2, 3, 4, 6]) {
        const rule = { ...EVENT_RULE, medianFrames, inflatedThreshold, eventPeakThreshold, minEventFrames };
        results.push({ rule, s: score(rule) });
      }
    }
  }
}
results.sort((a, b) => b.s.f1 - a.s.f1 || a.s.falsePerFree - b.s.falsePerFree);
console.log('shipped rule', JSON.stringify(EVENT_RULE), JSON.stringify(score(EVENT_RULE)));
for (const { rule, s } of results.slice(0, 25)) console.log(JSON.stringify(rule), JSON.stringify(s));
