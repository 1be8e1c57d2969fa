import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_PEAK_THRESHOLD, EVENT_RULE, INFLATED_THRESHOLD, balloonStatusOf, eventsFromProbabilities, inflationCandidates, settledEvents } from '@arteria/balloon-inflation';
import { outputProblem } from './manifest.js';

// '#' clearly inflated, '+' above the inflated threshold but below an event's peak, '-' below the threshold.
const HIGH = 0.97;
const MIDDLE = Math.round(((INFLATED_THRESHOLD + EVENT_PEAK_THRESHOLD) / 2) * 1000) / 1000;
const curve = (spec: string): number[] => [...spec].map((c) => (c === '#' ? HIGH : c === '+' ? MIDDLE : c === '-' ? INFLATED_THRESHOLD - 0.2 : 0.02));

describe('eventsFromProbabilities', () => {
  it('turns a run of inflated frames into one event with times and confidence', () => {
    const events = eventsFromProbabilities(curve('.....#########......'), 100);
    expect(events).toEqual([{ type: 'balloon-inflation', startFrame: 5, endFrame: 13, startMs: 500, endMs: 1300, confidence: HIGH }]);
    const output = { inflationDetected: true, balloon: 'inflated', events, frames: 20, frameTimeMs: 100, balloonFrames: 20, peakInflatedProbability: HIGH, weakCandidates: [] };
    expect(outputProblem(output)).toBeUndefined();
  });

  it('ignores single-frame flips and bridges short gaps', () => {
    expect(eventsFromProbabilities(curve('...#.....#...#......'), 66.7)).toEqual([]);
    const events = eventsFromProbabilities(curve('..######..#####.....'), 50);
    expect(events.map((e) => [e.startFrame, e.endFrame])).toEqual([[2, 14]]);
  });

  it('keeps separate inflations apart and drops events shorter than three frames', () => {
    const events = eventsFromProbabilities(curve('.####.....######......##..'), 40);
    expect(events.map((e) => [e.startFrame, e.endFrame])).toEqual([
      [1, 4],
      [10, 15],
    ]);
    expect(events[1]!.startMs).toBe(400);
  });

  it('reports an inflation that lasts to the last frame, with a lower confidence for weak frames', () => {
    const events = eventsFromProbabilities(curve('..........++++####++++'), 33.333);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ startFrame: 10, endFrame: 21, endMs: 699.993 });
    expect(events[0]!.confidence).toBeCloseTo((8 * MIDDLE + 4 * HIGH) / 12, 3);
    expect(eventsFromProbabilities([], 100)).toEqual([]);
  });

  it('reports no event where the probability stays middling (no clear inflated core), and lists those frames as weak candidates', () => {
    expect(eventsFromProbabilities(curve('.....++++++++++++++.....'), 100)).toEqual([]);
    const { events, weak } = inflationCandidates(curve('.....++++++++++++++.....#######.'), 100);
    expect(events.map((e) => [e.startFrame, e.endFrame])).toEqual([[24, 30]]);
    expect(weak).toEqual([{ startFrame: 5, endFrame: 18, peakProbability: MIDDLE }]);
    const output = { inflationDetected: true, balloon: 'inflated', events, frames: 32, frameTimeMs: 100, balloonFrames: 32, peakInflatedProbability: HIGH, weakCandidates: weak };
    expect(outputProblem(output)).toBeUndefined();
    expect(outputProblem({ ...output, weakCandidates: [{ ...weak[0], peakProbability: 1.5 }] })).toBeDefined();
    expect(outputProblem({ ...output, weakCandidates: undefined })).toBeDefined();
    expect(eventsFromProbabilities(curve('.....++++++###+++++.....').map((p) => Math.min(p, EVENT_PEAK_THRESHOLD - 0.01)), 100)).toEqual([]);
  });

  it('drops flips shorter than three frames, and with a running median those of up to half its width', () => {
    expect(eventsFromProbabilities(curve('.....##.....#.......'), 100)).toEqual([]);
    expect(eventsFromProbabilities(curve('.....###......'), 100).map((e) => [e.startFrame, e.endFrame])).toEqual([[5, 7]]);
    const median7 = { ...EVENT_RULE, medianFrames: 7 };
    expect(inflationCandidates(curve('.....###.....###.......'), 100, median7).events).toEqual([]);
    expect(inflationCandidates(curve('.....####......'), 100, median7).events.map((e) => [e.startFrame, e.endFrame])).toEqual([[5, 8]]);
  });

  it('tells a run without a balloon from one whose balloon stays deflated', () => {
    const events = eventsFromProbabilities(curve('.....#########......'), 100);
    expect(balloonStatusOf(events, 20)).toBe('inflated');
    expect(balloonStatusOf([], 20)).toBe('visible');
    expect(balloonStatusOf([], 2)).toBe('not-visible');
  });

  it('settles an event from the frames seen so far exactly as the whole run reports it, once the frames after it fix it', () => {
    for (const rule of [EVENT_RULE, { ...EVENT_RULE, medianFrames: 7 }]) {
      for (const spec of ['.....#########......####.+###..##.......', '###..######...#', '....++++###++.-.###....']) {
        const all = curve(spec);
        const final = inflationCandidates(all, 100, rule).events;
        for (let seen = 0; seen <= all.length; seen++) {
          const settled = settledEvents(all.slice(0, seen), 100, rule);
          // A prefix of the final events, each unchanged, and every event that ends early enough.
          expect(settled, `${spec} after ${seen} frames`).toEqual(final.slice(0, settled.length));
          expect(settled).toEqual(final.filter((e) => e.endFrame + rule.maxGapFrames + 1 <= seen - 1 - (rule.medianFrames >> 1)));
        }
      }
    }
  });
});

describe('the training pipeline\'s event rule', () => {
  it('is the shipped one: train/py/valscore.py chooses weights with the rule the algorithm runs', () => {
    const source = readFileSync(new URL('../train/py/valscore.py', import.meta.url), 'utf8');
    const signature = /def events_of\(p, threshold=([\d.]+), peak=([\d.]+), max_gap=(\d+), min_frames=(\d+)\):/.exec(source);
    expect(signature?.slice(1).map(Number)).toEqual([EVENT_RULE.inflatedThreshold, EVENT_RULE.eventPeakThreshold, EVENT_RULE.maxGapFrames, EVENT_RULE.minEventFrames]);
    expect(EVENT_RULE.medianFrames).toBe(1);
  });
});
