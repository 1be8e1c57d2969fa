import type { FrameLayout, FrameStack } from '@arteria/sdk';
import { ChangeHistogram } from './histogram.js';

/** Frames are averaged in blocks down to about this many cells on their longer side. */
const GRID_CELLS = 128;
/** Borders often hold collimator blades and shutters; they are left out. */
const BORDER_FRACTION = 0.05;
/** Share of the field in each tail of the change histogram. */
const TAIL_FRACTION = 0.02;
/** Median absolute deviation to standard deviation, for normal noise. */
const MAD_TO_SD = 1 / 0.6745;

/** Per-frame curves of darkening against the baseline, in log-attenuation units. */
export interface DarkeningCurves {
  /**
   * (median - mean of the darkest 2%) - (mean of the brightest 2% - median) of the change.
   * Contrast only darkens, so it pushes the low tail down; noise, cardiac motion and
   * exposure changes move both tails alike. Sensitive to the first contrast in the
   * largest vessels, but it saturates once they are full.
   */
  tail: Float64Array;
  /**
   * median - mean of the change: the contrast over the whole field (a time-density
   * curve). It keeps rising while distal vessels fill, so it places the peak.
   */
  density: Float64Array;
  /**
   * Standard deviation of `tail` due to noise, from how much the two halves of a
   * checkerboard split of each frame disagree: unlike frame-to-frame changes, it does
   * not grow with the injection.
   */
  tailNoise: number;
}

/**
 * Each frame is block-averaged, log-transformed and compared with the most similar
 * baseline frame (as in digital subtraction angiography); the change image is
 * summarised by its histogram.
 */
export function darkeningCurves(frames: FrameStack, baselineFrames: number, signal: AbortSignal): DarkeningCurves {
  const tracker = new DarkeningTracker(frames, baselineFrames);
  tracker.add(frames, signal);
  return tracker.finish();
}

/**
 * darkeningCurves one batch of frames at a time, in frame order: the state is the
 * baseline frames' block grids and three numbers per frame, whatever the frame size.
 * The baseline frames are measured once all of them have arrived.
 */
export class DarkeningTracker {
  readonly #grid: Grid;
  readonly #baselineFrames: number;
  readonly #baseline: Float32Array[] = [];
  readonly #tail: Float64Array;
  readonly #density: Float64Array;
  readonly #halfDisagreement: Float64Array;
  readonly #current: Float32Array;
  readonly #meter: ChangeMeter;
  #seen = 0;

  constructor(layout: FrameLayout, baselineFrames: number) {
    this.#grid = planGrid(layout);
    this.#baselineFrames = Math.min(baselineFrames, layout.frameCount);
    this.#tail = new Float64Array(layout.frameCount);
    this.#density = new Float64Array(layout.frameCount);
    this.#halfDisagreement = new Float64Array(layout.frameCount);
    this.#current = new Float32Array(this.#grid.cells);
    this.#meter = new ChangeMeter(this.#grid);
  }

  /** The run's next frames: frame 0 of `frames` follows the last frame added. */
  add(frames: FrameStack, signal: AbortSignal): void {
    for (let i = 0; i < frames.frameCount; i++) {
      signal.throwIfAborted();
      const f = this.#seen++;
      if (f >= this.#tail.length) throw new Error(`frame ${f} is beyond the run's ${this.#tail.length} frames`);
      if (f < this.#baselineFrames) {
        this.#baseline.push(blockLog(frames, this.#grid, i, new Float32Array(this.#grid.cells)));
        if (this.#baseline.length === this.#baselineFrames) this.#baseline.forEach((own, b) => this.#measure(b, own, own));
      } else {
        this.#measure(f, blockLog(frames, this.#grid, i, this.#current), undefined);
      }
    }
  }

  finish(): DarkeningCurves {
    if (this.#seen !== this.#tail.length) throw new Error(`the run ended after ${this.#seen} of ${this.#tail.length} frames`);
    return curvesOf(this.#tail, this.#density, this.#halfDisagreement);
  }

  #measure(f: number, current: Float32Array, own: Float32Array | undefined): void {
    // Baseline frames are compared with the others only, so a frame is never its own reference.
    const [tail, density, halfDisagreement] = this.#meter.measure(current, closest(current, this.#baseline, own));
    this.#tail[f] = tail;
    this.#density[f] = density;
    this.#halfDisagreement[f] = halfDisagreement;
  }
}

/** The change image of a frame against its reference, summarised: [tail, density, half disagreement]. */
export class ChangeMeter {
  readonly #grid: Grid;
  readonly #all = new ChangeHistogram();
  readonly #halves = [new ChangeHistogram(), new ChangeHistogram()];

  constructor(grid: Grid) {
    this.#grid = grid;
  }

  measure(current: Float32Array, reference: Float32Array): [number, number, number] {
    const grid = this.#grid;
    const [first, second] = this.#halves as [ChangeHistogram, ChangeHistogram];
    this.#all.reset();
    first.reset();
    second.reset();
    for (let y = 0, i = 0; y < grid.gridRows; y++) {
      for (let x = 0; x < grid.gridColumns; x++, i++) {
        const change = current[i]! - reference[i]!;
        this.#all.add(change);
        ((x + y) & 1 ? second : first).add(change);
      }
    }
    // The full statistic averages the two halves: its noise is half their difference.
    return [this.#all.tailAsymmetry(TAIL_FRACTION), this.#all.skew(), Math.abs(first.tailAsymmetry(TAIL_FRACTION) - second.tailAsymmetry(TAIL_FRACTION)) / 2];
  }
}

/** The curves from per-frame measurements. */
export function curvesOf(tail: Float64Array, density: Float64Array, halfDisagreement: Float64Array): DarkeningCurves {
  return { tail, density, tailNoise: noiseOf(halfDisagreement) };
}

/** Noise of the tail curve from the per-frame half disagreements. */
export function noiseOf(halfDisagreement: Float64Array): number {
  return median(halfDisagreement) * MAD_TO_SD;
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The baseline frame most like this one, i.e. nearest in cardiac phase and table
 * position: a single sharp frame, because an average of several blurs moving
 * structures and makes motion look like darkening.
 */
export function closest(current: Float32Array, baseline: readonly Float32Array[], exclude: Float32Array | undefined): Float32Array {
  let best: Float32Array | undefined;
  let bestDistance = Infinity;
  for (const candidate of baseline) {
    if (candidate === exclude) continue;
    let distance = 0;
    for (let i = 0; i < current.length; i++) distance += (current[i]! - candidate[i]!) ** 2;
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return best ?? current;
}

export interface Grid {
  block: number;
  top: number;
  left: number;
  gridRows: number;
  gridColumns: number;
  cells: number;
}

export function planGrid(frames: Pick<FrameLayout, 'rows' | 'columns'>): Grid {
  const top = Math.floor(frames.rows * BORDER_FRACTION);
  const left = Math.floor(frames.columns * BORDER_FRACTION);
  const innerRows = frames.rows - 2 * top;
  const innerColumns = frames.columns - 2 * left;
  const block = Math.max(1, Math.ceil(Math.max(innerRows, innerColumns) / GRID_CELLS));
  const gridRows = Math.max(1, Math.floor(innerRows / block));
  const gridColumns = Math.max(1, Math.floor(innerColumns / block));
  return { block, top, left, gridRows, gridColumns, cells: gridRows * gridColumns };
}

/**
 * Block means of one frame as log intensity, MONOCHROME1 inverted so that more contrast
 * is always darker. Large blocks are sampled on a sparser lattice: the mean barely
 * changes and 4096-pixel frames stay cheap.
 */
export function blockLog(frames: FrameStack, grid: Grid, f: number, out: Float32Array): Float32Array {
  const { block, top, left, gridRows, gridColumns } = grid;
  const { pixels, columns } = frames;
  const step = Math.max(1, Math.floor(block / 4));
  const perBlock = Math.ceil(block / step) ** 2;
  const maxValue = 2 ** frames.bitsStored - 1;
  const invert = frames.photometric === 'MONOCHROME1';
  const frameStart = f * frames.rows * columns;
  out.fill(0);
  for (let gy = 0; gy < gridRows; gy++) {
    for (let dy = 0; dy < block; dy += step) {
      const rowStart = frameStart + (top + gy * block + dy) * columns + left;
      for (let gx = 0; gx < gridColumns; gx++) {
        const p = rowStart + gx * block;
        let s = 0;
        for (let dx = 0; dx < block; dx += step) s += pixels[p + dx]!;
        out[gy * gridColumns + gx]! += s;
      }
    }
  }
  for (let i = 0; i < out.length; i++) {
    const mean = out[i]! / perBlock;
    out[i] = Math.log((invert ? maxValue - mean : mean) + 1);
  }
  return out;
}
