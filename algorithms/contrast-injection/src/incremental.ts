import { assertNextSegment, type IncrementalAlgorithm, type PartialEvent, type StreamLayout } from '@arteria/sdk';
import { baselineFrameCount } from './detect.js';
import { assertEnoughFrames, summarize, type ContrastInjectionOutput } from './output.js';
import { blockLog, ChangeMeter, closest, curvesOf, noiseOf, planGrid, type Grid } from './signal.js';

/**
 * The run while it is acquired. The one-shot detection compares every frame with the
 * closest of the first B frames, where B depends on the run's length (at most 8); from
 * SETTLED_FRAMES frames on, B is 8 whatever the final length. Until then the state keeps
 * each frame's block grid (at most SETTLED_FRAMES x 64 KiB); from then on only the
 * baseline grids and three numbers per frame, each new frame measured as it arrives.
 */
export interface ContrastState {
  layout: StreamLayout;
  grid: Grid;
  seen: number;
  /** Before settling every frame's block grid; after, the baseline frames' only. */
  grids: Float32Array[];
  settled: boolean;
  tail: number[];
  density: number[];
  half: number[];
  /** Consecutive measured frames above the early-report threshold. */
  above: number;
  arrived: boolean;
}

const MAX_BASELINE_FRAMES = baselineFrameCount(Number.MAX_SAFE_INTEGER);
/** The shortest run whose baseline is MAX_BASELINE_FRAMES: past it, no later frame changes the baseline. */
export const SETTLED_FRAMES = ((): number => {
  let frames = 1;
  while (baselineFrameCount(frames) < MAX_BASELINE_FRAMES) frames++;
  return frames;
})();

/**
 * Contrast arrival is reported early only when the darkening is far beyond what the final
 * detection needs (8 noise deviations and 0.05): twice that margin, held for 3 frames.
 */
const EARLY_SIGMAS = 16;
const EARLY_MIN = 0.1;
const EARLY_FRAMES = 3;
const SIGMA_MIN = 0.002;

export const contrastIncremental: IncrementalAlgorithm<ContrastState, ContrastInjectionOutput> = {
  // Each frame becomes a block grid of its own (blockLog): no view of the segment's pixels is kept.
  borrowsFrames: true,

  createState({ layout }) {
    return { layout, grid: planGrid(layout), seen: 0, grids: [], settled: false, tail: [], density: [], half: [], above: 0, arrived: false };
  },

  onFrames(state, segment, { signal }) {
    assertNextSegment(state.seen, segment);
    const meter = new ChangeMeter(state.grid);
    const events: PartialEvent[] = [];
    for (let i = 0; i < segment.frames.frameCount; i++) {
      signal.throwIfAborted();
      const grid = blockLog(segment.frames, state.grid, i, new Float32Array(state.grid.cells));
      state.seen++;
      if (!state.settled) {
        state.grids.push(grid);
        if (state.seen < SETTLED_FRAMES) continue;
        measureAll(state, meter, MAX_BASELINE_FRAMES, state.seen);
        state.grids.length = MAX_BASELINE_FRAMES;
        state.settled = true;
        for (let f = 0; f < state.seen; f++) noteEarly(state, f, events);
      } else {
        measure(state, meter, grid, undefined);
        noteEarly(state, state.seen - 1, events);
      }
    }
    return events;
  },

  finish(state) {
    const layout = { ...state.layout, frameCount: state.seen };
    assertEnoughFrames(layout);
    if (!state.settled) measureAll(state, new ChangeMeter(state.grid), Math.min(baselineFrameCount(state.seen), state.seen), state.seen);
    return summarize(layout, curvesOf(Float64Array.from(state.tail), Float64Array.from(state.density), Float64Array.from(state.half)));
  },
};

/** Measures the first `frames` frames against the first `baseline` grids, as the one-shot tracker does. */
function measureAll(state: ContrastState, meter: ChangeMeter, baseline: number, frames: number): void {
  const reference = state.grids.slice(0, baseline);
  for (let f = 0; f < frames; f++) {
    const grid = state.grids[f]!;
    // Baseline frames are compared with the others only, so a frame is never its own reference.
    measureAgainst(state, meter, grid, reference, f < baseline ? grid : undefined);
  }
}

function measure(state: ContrastState, meter: ChangeMeter, grid: Float32Array, own: Float32Array | undefined): void {
  measureAgainst(state, meter, grid, state.grids, own);
}

function measureAgainst(state: ContrastState, meter: ChangeMeter, grid: Float32Array, baseline: readonly Float32Array[], own: Float32Array | undefined): void {
  const [tail, density, half] = meter.measure(grid, closest(grid, baseline, own));
  state.tail.push(tail);
  state.density.push(density);
  state.half.push(half);
}

/** Reports contrast arrival once, when frame f is the third in a row far above the baseline. */
function noteEarly(state: ContrastState, f: number, events: PartialEvent[]): void {
  if (state.arrived || f < MAX_BASELINE_FRAMES) return;
  const base = median(state.tail.slice(0, MAX_BASELINE_FRAMES));
  const sigma = Math.max(SIGMA_MIN, noiseOf(Float64Array.from(state.half.slice(0, f + 1))));
  state.above = state.tail[f]! - base > Math.max(EARLY_SIGMAS * sigma, EARLY_MIN) ? state.above + 1 : 0;
  if (state.above < EARLY_FRAMES) return;
  state.arrived = true;
  const frame = f - EARLY_FRAMES + 1;
  events.push({ key: 'contrast-arrival', type: 'contrast-arrival', frame, ms: Number((frame * state.layout.frameTimeMs).toFixed(1)) });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
