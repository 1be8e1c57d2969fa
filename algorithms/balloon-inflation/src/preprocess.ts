import type { FrameStack } from '@arteria/sdk';
import { FrameBoxes, SIDE } from './boxes.js';

export { SIDE, boxEdges } from './boxes.js';
/** Normalized values are clipped to +-CLIP: shutters, saturated and masked areas become flat. */
export const CLIP = 3;
export const PLANE = SIDE * SIDE;
/** Channels of the model input per frame: the normalized frame, its difference from the reference, and the same for the mean of the last MEAN_FRAMES frames. */
export const CHANNELS = 3;
/** The run's first REFERENCE_FRAMES frames (all of a shorter run) set the normalization and the reference. */
export const REFERENCE_FRAMES = 8;
/** The third channel averages the frame and the MEAN_FRAMES - 1 before it (fewer at the start). */
export const MEAN_FRAMES = 3;
/** Floats of one frame's model input. */
export const FRAME_INPUT = CHANNELS * PLANE;

export interface RunStatistics {
  /** Median of the first frames' mean over the exposed field (stored units, sign-corrected). */
  centre: number;
  /** Its 5th to 95th percentile spread over the exposed field. */
  spread: number;
}

export interface PreparedRun {
  frameCount: number;
  /** Model input [frameCount, CHANNELS, SIDE, SIDE]. */
  tensor: Float32Array;
  statistics: RunStatistics;
}

/**
 * What the pre-processing keeps of a run while its frames arrive (data only, so that it can
 * be checkpointed): the box means of the first frames until REFERENCE_FRAMES have come, then
 * the run's statistics, the reference and the last MEAN_FRAMES - 1 normalized frames. It
 * does not grow with the run.
 */
export interface InputState {
  sign: number;
  /** Frames added so far. */
  seen: number;
  /** Box means of the first frames (frame-major), until the reference is settled; then empty. */
  early: Float32Array;
  /** Sum of the early frames' box means. */
  earlySum: Float64Array;
  /** Set once the reference is settled (REFERENCE_FRAMES frames, or the end of a shorter run). */
  statistics: RunStatistics | null;
  /** Per-box lower median of the first frames, normalized. */
  reference: Float32Array;
  /** The last normalized frames, oldest first (at most MEAN_FRAMES - 1). */
  recent: Float32Array[];
}

/** A new run's pre-processing state. */
export function inputState(photometric: string): InputState {
  return {
    sign: photometric === 'MONOCHROME1' ? -1 : 1,
    seen: 0,
    early: new Float32Array(0),
    earlySum: new Float64Array(PLANE),
    statistics: null,
    reference: new Float32Array(0),
    recent: [],
  };
}

/**
 * The model input of the run's next frames, whatever their size, bit depth, encoding (linear,
 * log or other monotone curve) and photometric interpretation. No window and no log
 * transform: both would act on values near the floor, where a shutter's noise turns into
 * strong structure. Each frame is reduced to SIDE x SIDE box means, negated for MONOCHROME1
 * (denser is always lower), and scaled by the robust statistics of the run's first
 * REFERENCE_FRAMES frames; the model learned the rest from runs with every encoding.
 *
 * Returns [m, CHANNELS, SIDE, SIDE] for the m frames whose input is now known: none while the
 * first REFERENCE_FRAMES frames arrive, then those frames and every later one as it comes.
 * `endInput` gives the frames still held back when the run ends. The same arithmetic trains
 * the model (train/py/prep.py; a fixture test holds the two together).
 */
export function addFrames(state: InputState, frames: FrameStack, signal?: AbortSignal): Float32Array {
  const boxes = new FrameBoxes(frames);
  const small = new Float32Array(PLANE);
  const ready: Float32Array[] = [];
  for (let i = 0; i < frames.frameCount; i++) {
    signal?.throwIfAborted();
    boxes.reduce(frames, i, state.sign, small, state.statistics === null ? state.earlySum : undefined);
    state.seen++;
    if (state.statistics !== null) {
      ready.push(inputOf(state, small));
      continue;
    }
    const early = new Float32Array(state.early.length + PLANE);
    early.set(state.early);
    early.set(small, state.early.length);
    state.early = early;
    if (state.seen === REFERENCE_FRAMES) ready.push(settle(state));
  }
  return concat(ready);
}

/** The input of the frames `addFrames` still holds back (a run shorter than REFERENCE_FRAMES frames); empty otherwise. */
export function endInput(state: InputState): Float32Array {
  return state.statistics === null && state.seen > 0 ? settle(state) : new Float32Array(0);
}

/** The whole run's model input at once: what `addFrames` and `endInput` give, in order. */
export function prepareRun(frames: FrameStack, signal?: AbortSignal): PreparedRun {
  const state = inputState(frames.photometric);
  const tensor = concat([addFrames(state, frames, signal), endInput(state)]);
  if (state.statistics === null) throw new Error('a run without frames has no model input');
  return { frameCount: frames.frameCount, tensor, statistics: state.statistics };
}

/** Statistics and reference from the early frames; returns their model input and forgets them. */
function settle(state: InputState): Float32Array {
  const k = state.seen;
  const mean = state.earlySum.map((v) => v / k);
  const statistics = runStatistics(mean);
  state.statistics = statistics;
  const normalized = new Float32Array(k * PLANE);
  for (let f = 0; f < k; f++) normalize(state.early.subarray(f * PLANE, (f + 1) * PLANE), statistics, normalized.subarray(f * PLANE, (f + 1) * PLANE));
  // The reference: each box's lower median over the early frames.
  const reference = new Float32Array(PLANE);
  const column = new Float32Array(k);
  for (let p = 0; p < PLANE; p++) {
    for (let f = 0; f < k; f++) column[f] = normalized[f * PLANE + p]!;
    reference[p] = selectInPlace(column, (k - 1) >> 1);
  }
  state.reference = reference;
  state.early = new Float32Array(0);
  state.earlySum = new Float64Array(0);
  const out = new Float32Array(k * FRAME_INPUT);
  for (let f = 0; f < k; f++) out.set(channelsOf(state, normalized.slice(f * PLANE, (f + 1) * PLANE)), f * FRAME_INPUT);
  return out;
}

/** One later frame's model input from its box means. */
function inputOf(state: InputState, small: Float32Array): Float32Array {
  const x = new Float32Array(PLANE);
  normalize(small, state.statistics!, x);
  return channelsOf(state, x);
}

/** The model input of the normalized frame x, which then joins the recent frames. */
function channelsOf(state: InputState, x: Float32Array): Float32Array {
  const out = new Float32Array(FRAME_INPUT);
  const reference = state.reference;
  const recent = state.recent;
  const count = recent.length + 1;
  for (let p = 0; p < PLANE; p++) {
    const r = reference[p]!;
    const v = x[p]!;
    let sum = 0;
    for (const older of recent) sum += older[p]!;
    out[p] = v;
    out[PLANE + p] = v - r;
    out[2 * PLANE + p] = Math.fround((sum + v) / count) - r;
  }
  recent.push(x);
  if (recent.length > MEAN_FRAMES - 1) recent.shift();
  return out;
}

function normalize(small: Float32Array, { centre, spread }: RunStatistics, out: Float32Array): void {
  for (let p = 0; p < PLANE; p++) {
    const v = (small[p]! - centre) / spread;
    out[p] = v < -CLIP ? -CLIP : v > CLIP ? CLIP : v;
  }
}

function concat(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The k-th smallest value of `values` (what sorting and taking index k gives), by
 * quickselect. Reorders `values`.
 */
export function selectInPlace(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k]!;
  }
  return values[k]!;
}

/**
 * Centre and spread of a mean frame over its exposed field: values within the lowest
 * tenth of the range (closed shutters, the dark outside of an intensifier circle) are left out.
 */
export function runStatistics(mean: Float64Array): RunStatistics {
  const sorted = Float64Array.from(mean).sort();
  const at = (values: Float64Array, q: number): number => values[Math.floor(q * (values.length - 1))]!;
  const lo = at(sorted, 0.005);
  const hi = at(sorted, 0.995);
  const threshold = lo + 0.1 * (hi - lo);
  let inside = sorted.filter((v) => v > threshold);
  if (inside.length < 16) inside = sorted;
  const centre = at(inside, 0.5);
  let spread = at(inside, 0.95) - at(inside, 0.05);
  if (!(spread > 0)) spread = Math.max(hi - lo, 1);
  return { centre, spread };
}
