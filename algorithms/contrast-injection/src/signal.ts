import type { FrameStack } from '@arteria/sdk';

/** Frames are averaged in blocks down to about this many cells on their longer side. */
const GRID_CELLS = 128;
/** Borders often hold collimator blades and shutters; they are left out. */
const BORDER_FRACTION = 0.05;
/** Share of the field in each tail of the change histogram. */
const TAIL_FRACTION = 0.02;
const HISTOGRAM_RANGE = 2;
const HISTOGRAM_BINS = 4000;

/**
 * Per-frame darkening asymmetry against a baseline, in log-attenuation units.
 *
 * Each frame is block-averaged, log-transformed and compared with the most similar
 * baseline frame (as in digital subtraction angiography). Contrast only darkens, so it
 * pushes the low tail of the change histogram down; noise, cardiac motion and exposure
 * changes move both tails alike. The signal is (median - mean of the darkest 2%) minus
 * (mean of the brightest 2% - median): about zero without contrast, rising with it.
 */
export function darkeningSignal(frames: FrameStack, baselineFrames: number, signal: AbortSignal): Float64Array {
  const grid = planGrid(frames);
  const baseline = Array.from({ length: baselineFrames }, (_, f) => blockLog(frames, grid, f, new Float32Array(grid.cells)));
  const result = new Float64Array(frames.frameCount);
  const current = new Float32Array(grid.cells);
  const histogram = new Uint32Array(HISTOGRAM_BINS);
  for (let f = 0; f < frames.frameCount; f++) {
    signal.throwIfAborted();
    const own = baseline[f];
    if (own !== undefined) current.set(own);
    else blockLog(frames, grid, f, current);
    // Baseline frames are compared with the others only, so a frame is never its own reference.
    const reference = closest(current, baseline, own);
    result[f] = tailAsymmetry(current, reference, histogram);
  }
  return result;
}

/**
 * The baseline frame most like this one, i.e. nearest in cardiac phase and table
 * position: a single sharp frame, because an average of several blurs moving
 * structures and makes motion look like darkening.
 */
function closest(current: Float32Array, baseline: readonly Float32Array[], exclude: Float32Array | undefined): Float32Array {
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

interface Grid {
  block: number;
  top: number;
  left: number;
  gridRows: number;
  gridColumns: number;
  cells: number;
}

function planGrid(frames: FrameStack): Grid {
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
function blockLog(frames: FrameStack, grid: Grid, f: number, out: Float32Array): Float32Array {
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

/** (median - low tail mean) - (high tail mean - median) of current - reference. */
function tailAsymmetry(current: Float32Array, reference: Float32Array, histogram: Uint32Array): number {
  histogram.fill(0);
  const scale = HISTOGRAM_BINS / (2 * HISTOGRAM_RANGE);
  for (let i = 0; i < current.length; i++) {
    const bin = Math.floor((current[i]! - reference[i]! + HISTOGRAM_RANGE) * scale);
    histogram[bin < 0 ? 0 : bin >= HISTOGRAM_BINS ? HISTOGRAM_BINS - 1 : bin]!++;
  }
  const n = current.length;
  const center = (bin: number): number => (bin + 0.5) / scale - HISTOGRAM_RANGE;
  const tail = Math.max(1, Math.round(n * TAIL_FRACTION));
  const low = tailMean(histogram, tail, 1, center);
  const high = tailMean(histogram, tail, -1, center);
  const median = quantile(histogram, n / 2, center);
  return median - low - (high - median);
}

function tailMean(histogram: Uint32Array, count: number, direction: 1 | -1, center: (bin: number) => number): number {
  let taken = 0;
  let sum = 0;
  for (let k = 0; k < histogram.length && taken < count; k++) {
    const bin = direction === 1 ? k : histogram.length - 1 - k;
    const use = Math.min(histogram[bin]!, count - taken);
    taken += use;
    sum += use * center(bin);
  }
  return sum / taken;
}

function quantile(histogram: Uint32Array, rank: number, center: (bin: number) => number): number {
  let seen = 0;
  for (let bin = 0; bin < histogram.length; bin++) {
    seen += histogram[bin]!;
    if (seen >= rank) return center(bin);
  }
  return center(histogram.length - 1);
}
