import { describe, expect, it } from 'vitest';
import type { InflationEvent } from '@arteria/balloon-inflation';
import { groupF1Svg, groupRows, tracesOf, tracesSvg } from '../train/eval-charts.js';
import { metricsOf, type RunMeta, type RunRecord } from '../train/evaluate.js';
import { eventF1, matchEvents, scoreRun } from '../train/metrics.js';

const meta = (over: Partial<RunMeta>): RunMeta => ({
  seed: 1,
  kind: 'angioplasty',
  tags: ['inflation'],
  size: 512,
  frames: 60,
  fps: 15,
  bits: 8,
  photometric: 'MONOCHROME2',
  encoding: 'log',
  inflations: 1,
  spacing: 0.1,
  events: [[20, 30]],
  visibleFrames: 60,
  dose: 3000,
  ...over,
});

const event = (startFrame: number, endFrame: number): InflationEvent => ({ type: 'balloon-inflation', startFrame, endFrame, startMs: startFrame * 66, endMs: endFrame * 66, confidence: 0.9 });

function record(name: string, m: RunMeta, events: InflationEvent[], balloon: RunRecord['balloon']): RunRecord {
  const score = scoreRun(m.events.map(([startFrame, endFrame]) => ({ startFrame, endFrame })), events);
  const wrong = score.falseNegatives + score.falsePositives > 0;
  return { name, meta: m, score, events, balloon, ...(wrong ? { inflated: Array.from({ length: m.frames }, (_, f) => (f >= 20 && f <= 30 ? 0.8 : 0.1)) } : {}) };
}

// Four runs: one found, one missed (8-bit linear), one balloon-free with a false event (a bolus), one balloon-free and quiet.
const runs = [
  record('found', meta({}), [event(21, 30)], 'inflated'),
  record('missed', meta({ encoding: 'linear', bits: 8 }), [], 'visible'),
  record('bolus', meta({ tags: ['bolus'], inflations: 0, events: [], visibleFrames: 0 }), [event(5, 12)], 'inflated'),
  record('quiet', meta({ tags: [], inflations: 0, events: [], visibleFrames: 0, bits: 12 }), [], 'not-visible'),
];

describe('evaluation metrics of scored runs', () => {
  it('matches one to one, best IoU first, and says which reported events matched', () => {
    const truth = [{ startFrame: 10, endFrame: 20 }];
    expect(matchEvents(truth, [{ startFrame: 12, endFrame: 19 }, { startFrame: 10, endFrame: 20 }])).toEqual([[0, 1]]);
    expect(matchEvents(truth, [{ startFrame: 30, endFrame: 40 }])).toEqual([]);
  });

  it('sums runs into the F1, the balloon-free false events and the status, and scores each group with its interval', () => {
    const m = metricsOf(runs);
    expect(m.f1).toBeCloseTo(eventF1(runs.map((r) => r.score)), 12);
    expect(m.f1).toBeCloseTo(2 / 4, 12); // 1 found, 1 missed, 1 false
    expect([m.events, m.balloonFreeRuns, m.falseEventsBalloonFree, m.falseEventsPerBalloonFreeRun]).toEqual([2, 2, 1, 0.5]);
    expect(m.statusCorrect).toBe(2); // 'found' and 'quiet'; 'bolus' is not inflated, 'missed' is
    const confounder = m.groups['confounder']!;
    expect(confounder['bolus']).toEqual({ runs: 1, events: 0, detected: 0, falseEvents: 1, f1: null, f1Interval: null });
    expect(confounder['none']).toMatchObject({ runs: 3, events: 2, detected: 1, f1: 2 / 3 });
    const [lo, hi] = confounder['none']!.f1Interval!;
    expect(lo).toBeLessThanOrEqual(2 / 3);
    expect(hi).toBeGreaterThanOrEqual(2 / 3);
    expect(m.groups['encoding']!['linear MONOCHROME2']).toMatchObject({ events: 1, detected: 0, f1: 0, f1Interval: [0, 0] });
  });
});

describe('evaluation charts', () => {
  it('draws a dot for each group with inflations, green at or above its target and red below, and says where there is none', () => {
    const m = metricsOf(runs);
    const rows = groupRows(m);
    const svg = groupF1Svg(rows, { f1: 0.95, confounderF1: 0.9 }, 'F1 <by group>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('F1 &lt;by group&gt;');
    const dots = [...svg.matchAll(/<circle [^>]*fill="(#[0-9a-f]+)"/g)].map((d) => d[1]);
    expect(dots).toHaveLength(rows.filter((r) => r.f1 !== null).length);
    expect(dots.filter((c) => c === '#2ca02c')).toHaveLength(rows.filter((r) => r.f1 !== null && r.f1 >= 0.95).length);
    expect(svg.match(/no inflation/g)).toHaveLength(rows.filter((r) => r.f1 === null).length);
    // A group without inflations shows its false events: the bolus run's one.
    expect(svg).toContain('no inflation, 1 false event<');
  });

  it('draws a panel for each run it got wrong, with the true inflation shaded and each reported event marked matched or false', () => {
    const traces = tracesOf(runs);
    expect(traces.map((t) => t.name)).toEqual(['missed: missed 1, false 0', 'bolus: missed 0, false 1']);
    expect(traces[1]!.reported).toEqual([{ startFrame: 5, endFrame: 12, matched: false }]);
    expect(traces[0]!.caption).toContain('linear MONOCHROME2');
    const svg = tracesSvg(traces, [0.6, 0.95], 'Wrong runs');
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg.match(/fill="#d62728"/g)).toHaveLength(1); // the bolus's false event
    expect(tracesSvg([], [0.6, 0.95], 'Wrong runs')).toContain('every run right');
  });
});
