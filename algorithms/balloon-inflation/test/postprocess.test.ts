import { describe, expect, it } from 'vitest';
import { balloonStatusOf, eventsFromProbabilities, inflationCandidates } from '@arteria/balloon-inflation';
import { outputProblem } from './manifest.js';

const curve = (spec: string): number[] => [...spec].map((c) => (c === '#' ? 0.95 : c === '+' ? 0.6 : c === '-' ? 0.3 : 0.02));

describe('eventsFromProbabilities', () => {
  it('turns a run of inflated frames into one event with times and confidence', () => {
    const events = eventsFromProbabilities(curve('.....#########......'), 100);
    expect(events).toEqual([{ type: 'balloon-inflation', startFrame: 5, endFrame: 13, startMs: 500, endMs: 1300, confidence: 0.95 }]);
    const output = { inflationDetected: true, balloon: 'inflated', events, frames: 20, frameTimeMs: 100, balloonFrames: 20, peakInflatedProbability: 0.95, weakCandidates: [] };
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
    expect(events[0]!.confidence).toBeCloseTo((8 * 0.6 + 4 * 0.95) / 12, 3);
    expect(eventsFromProbabilities([], 100)).toEqual([]);
  });

  it('reports no event where the probability stays middling (no clear inflated core), and lists those frames as weak candidates', () => {
    expect(eventsFromProbabilities(curve('.....++++++++++++++.....'), 100)).toEqual([]);
    const { events, weak } = inflationCandidates(curve('.....++++++++++++++.....#######.'), 100);
    expect(events.map((e) => [e.startFrame, e.endFrame])).toEqual([[24, 30]]);
    expect(weak).toEqual([{ startFrame: 5, endFrame: 18, peakProbability: 0.6 }]);
    const output = { inflationDetected: true, balloon: 'inflated', events, frames: 32, frameTimeMs: 100, balloonFrames: 32, peakInflatedProbability: 0.95, weakCandidates: weak };
    expect(outputProblem(output)).toBeUndefined();
    expect(outputProblem({ ...output, weakCandidates: [{ ...weak[0], peakProbability: 1.5 }] })).toBeDefined();
    expect(outputProblem({ ...output, weakCandidates: undefined })).toBeDefined();
    expect(eventsFromProbabilities(curve('.....++++++###+++++.....').map((p) => Math.min(p, 0.69)), 100)).toEqual([]);
  });

  it('drops flips of up to three frames', () => {
    expect(eventsFromProbabilities(curve('.....###.....###.......'), 100)).toEqual([]);
    expect(eventsFromProbabilities(curve('.....####......'), 100).map((e) => [e.startFrame, e.endFrame])).toEqual([[5, 8]]);
  });

  it('tells a run without a balloon from one whose balloon stays deflated', () => {
    const events = eventsFromProbabilities(curve('.....#########......'), 100);
    expect(balloonStatusOf(events, 20)).toBe('inflated');
    expect(balloonStatusOf([], 20)).toBe('visible');
    expect(balloonStatusOf([], 2)).toBe('not-visible');
  });
});
