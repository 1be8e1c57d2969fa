import type { FrameLayout, FrameStack } from '@arteria/sdk';

/** Model input side: every frame is reduced to SIDE x SIDE box means, whatever its size. */
export const SIDE = 128;
/** Normalized values are clipped to +-CLIP: shutters, saturated and masked areas become flat. */
export const CLIP = 3;
export const PLANE = SIDE * SIDE;

export interface RunStatistics {
  /** Median of the run's mean frame over the exposed field (stored units, sign-corrected). */
  centre: number;
  /** Its 5th to 95th percentile spread over the exposed field. */
  spread: number;
}

export interface PreparedRun {
  frameCount: number;
  /** Model input [frameCount, 2, SIDE, SIDE]: the normalized frame and its difference from the run's per-pixel temporal median. */
  tensor: Float32Array;
  statistics: RunStatistics;
}

/** Row (or column) edges of the SIDE boxes over n source pixels: box i covers [lo, hi). */
export function boxEdges(n: number): { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(SIDE);
  const hi = new Int32Array(SIDE);
  for (let i = 0; i < SIDE; i++) {
    lo[i] = Math.floor((i * n) / SIDE);
    hi[i] = Math.max(Math.floor(((i + 1) * n) / SIDE), lo[i]! + 1);
  }
  return { lo, hi };
}

/**
 * The model input of a run, whatever its frame size, bit depth, encoding (linear, log or
 * other monotone curve) and photometric interpretation. No window and no log transform: both
 * would act on values near the floor, where a shutter's noise turns into strong structure.
 * Each frame is reduced to SIDE x SIDE box means, negated for MONOCHROME1 (denser is always
 * lower), and scaled by the run's robust statistics; the model learned the rest from runs
 * with every encoding. The same arithmetic trains the model (train/py/prep.py; a fixture
 * test holds the two together).
 */
export function prepareRun(frames: FrameStack, signal?: AbortSignal): PreparedRun {
  const preparer = new RunPreparer(frames);
  preparer.add(frames, signal);
  return preparer.finish(signal);
}

/** prepareRun one batch of frames at a time, in frame order: it keeps SIDE x SIDE values per frame (64 KiB), never the frames. */
export class RunPreparer {
  readonly #frameCount: number;
  readonly #sign: number;
  readonly #small: Float32Array;
  readonly #mean: Float64Array = new Float64Array(PLANE);
  #added = 0;

  constructor(layout: FrameLayout) {
    this.#frameCount = layout.frameCount;
    this.#sign = layout.photometric === 'MONOCHROME1' ? -1 : 1;
    this.#small = new Float32Array(layout.frameCount * PLANE);
  }

  /** The run's next frames: frame 0 of `frames` follows the last frame added. */
  add(frames: FrameStack, signal?: AbortSignal): void {
    const boxes = new FrameBoxes(frames);
    for (let i = 0; i < frames.frameCount; i++) {
      signal?.throwIfAborted();
      const f = this.#added;
      if (f >= this.#frameCount) throw new Error(`frame ${f} is beyond the run's ${this.#frameCount} frames`);
      boxes.reduce(frames, i, this.#sign, this.#small.subarray(f * PLANE, (f + 1) * PLANE), this.#mean);
      this.#added++;
    }
  }

  finish(signal?: AbortSignal): PreparedRun {
    const n = this.#frameCount;
    if (this.#added !== n) throw new Error(`the run ended after ${this.#added} of ${n} frames`);
    return preparedFrom(n, (f) => this.#small.subarray(f * PLANE, (f + 1) * PLANE), this.#mean, signal);
  }
}

/** The SIDE x SIDE box means of frames of one geometry. */
export class FrameBoxes {
  readonly #rows: { lo: Int32Array; hi: Int32Array };
  readonly #columns: { lo: Int32Array; hi: Int32Array };
  readonly #rowSums: Float64Array;

  constructor(frames: Pick<FrameStack, 'rows' | 'columns'>) {
    this.#rows = boxEdges(frames.rows);
    this.#columns = boxEdges(frames.columns);
    this.#rowSums = new Float64Array(frames.columns);
  }

  /** Frame i of `frames` as box means into `out` (sign applied), each also added to `meanSum`. */
  reduce(frames: FrameStack, i: number, sign: number, out: Float32Array, meanSum: Float64Array): void {
    const rows = this.#rows;
    const columns = this.#columns;
    const rowSums = this.#rowSums;
    const base = i * frames.rows * frames.columns;
    for (let r = 0; r < SIDE; r++) {
      rowSums.fill(0);
      for (let y = rows.lo[r]!; y < rows.hi[r]!; y++) {
        const row = base + y * frames.columns;
        for (let x = 0; x < frames.columns; x++) rowSums[x]! += frames.pixels[row + x]!;
      }
      const height = rows.hi[r]! - rows.lo[r]!;
      for (let c = 0; c < SIDE; c++) {
        let sum = 0;
        for (let x = columns.lo[c]!; x < columns.hi[c]!; x++) sum += rowSums[x]!;
        const value = (sign * sum) / (height * (columns.hi[c]! - columns.lo[c]!));
        out[r * SIDE + c] = value;
        meanSum[r * SIDE + c]! += value;
      }
    }
  }
}

/** The model input from every frame's box means (`smallAt(f)`) and their sum over the run. */
export function preparedFrom(n: number, smallAt: (frame: number) => Float32Array, meanSum: Float64Array, signal?: AbortSignal): PreparedRun {
  const mean = meanSum.map((v) => v / n);
  const statistics = runStatistics(mean);
  const tensor = new Float32Array(n * 2 * PLANE);
  const { centre, spread } = statistics;
  for (let f = 0; f < n; f++) {
    const small = smallAt(f);
    for (let p = 0; p < PLANE; p++) {
      const v = (small[p]! - centre) / spread;
      tensor[f * 2 * PLANE + p] = v < -CLIP ? -CLIP : v > CLIP ? CLIP : v;
    }
  }
  // Difference from the per-pixel temporal (lower) median: what changes during the run.
  const column = new Float32Array(n);
  const middle = (n - 1) >> 1;
  for (let p = 0; p < PLANE; p++) {
    if ((p & 1023) === 0) signal?.throwIfAborted();
    for (let f = 0; f < n; f++) column[f] = tensor[f * 2 * PLANE + p]!;
    const median = selectInPlace(column, middle);
    for (let f = 0; f < n; f++) tensor[f * 2 * PLANE + PLANE + p] = tensor[f * 2 * PLANE + p]! - median;
  }
  return { frameCount: n, tensor, statistics };
}

/**
 * The k-th smallest value of `values` (what sorting and taking index k gives), by
 * quickselect: the per-box temporal medians are the larger share of the work left after a
 * run's last frame, and a full sort of every box's column costs several times more.
 * Reorders `values`.
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
 * Centre and spread of a run's mean frame over its exposed field: values within the lowest
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
