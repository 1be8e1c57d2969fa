import type { FrameStack } from '@arteria/sdk';

/** Model input side: every frame is reduced to SIDE x SIDE box means, whatever its size. */
export const SIDE = 128;
const PLANE = SIDE * SIDE;

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

type Edges = { lo: Int32Array; hi: Int32Array };

/**
 * The SIDE x SIDE box means of frames of one geometry. Each box's sum is an exact integer
 * (the same value whatever the order of the additions), divided once by its pixel count:
 * every path below gives the same doubles, bit for bit.
 *
 * The common geometries (every box the same width, a multiple of 4 pixels for 8 bits, of 2
 * for 16) are summed from 32-bit words. For 8 bits, `(w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff)`
 * puts the sum of two bytes in each 16-bit half, so a box is summed 4 pixels per step and
 * its halves added at the end, as long as a half cannot pass 0xffff (boxes up to 514
 * pixels: 8 x 8 for 1024 x 1024 frames, 16 x 16 for 2048 x 2048). Other frames take the
 * pixel-by-pixel path.
 */
export class FrameBoxes {
  readonly #rows: Edges;
  readonly #columns: Edges;
  /** Pixels per box in a row when every box has that many (columns a multiple of SIDE), else 0. */
  readonly #width: number;
  readonly #maxHeight: number;
  /** Per box: its pixel sum, then made its mean. */
  readonly #sums = new Float64Array(PLANE);
  /** Pixel-by-pixel path: per column, the sum over the rows of one box row (at most 512 rows of 16-bit values: exact in 32 bits). */
  readonly #rowSums: Uint32Array;
  /** A copy of a frame whose pixels do not start on a 4-byte boundary, for the word paths. */
  #aligned: ArrayBuffer | undefined;

  constructor(frames: Pick<FrameStack, 'rows' | 'columns'>) {
    this.#rows = boxEdges(frames.rows);
    this.#columns = boxEdges(frames.columns);
    this.#width = frames.columns % SIDE === 0 ? frames.columns / SIDE : 0;
    let maxHeight = 0;
    for (let r = 0; r < SIDE; r++) maxHeight = Math.max(maxHeight, this.#rows.hi[r]! - this.#rows.lo[r]!);
    this.#maxHeight = maxHeight;
    this.#rowSums = new Uint32Array(frames.columns);
  }

  /** Frame i of `frames` as box means into `out` (sign applied), each also added to `meanSum` when given. */
  reduce(frames: FrameStack, i: number, sign: number, out: Float32Array, meanSum?: Float64Array): void {
    const { pixels, rows, columns } = frames;
    const plane = rows * columns;
    const width = this.#width;
    const sums = this.#sums;
    if (pixels instanceof Uint8Array && width % 4 === 0 && width > 0 && this.#maxHeight * width * 255 <= 2 * 0xffff) {
      sumWords8(this.#words(pixels, i * plane, plane), columns >> 2, width >> 2, this.#rows, sums);
    } else if (pixels instanceof Uint16Array && width % 2 === 0 && width > 0) {
      sumWords16(this.#words(pixels, i * plane, plane), columns >> 1, width >> 1, this.#rows, sums);
    } else {
      sumPixels(pixels, i * plane, columns, this.#rows, this.#columns, this.#rowSums, sums);
    }
    const rowEdges = this.#rows;
    const columnEdges = this.#columns;
    for (let r = 0; r < SIDE; r++) {
      const height = rowEdges.hi[r]! - rowEdges.lo[r]!;
      for (let c = 0; c < SIDE; c++) {
        const p = r * SIDE + c;
        const value = (sign * sums[p]!) / (height * (columnEdges.hi[c]! - columnEdges.lo[c]!));
        out[p] = value;
        if (meanSum !== undefined) meanSum[p]! += value;
      }
    }
  }

  /** The 32-bit words of the `count` pixels from `first` (a copy when they are not 4-byte aligned). */
  #words(pixels: Uint8Array | Uint16Array, first: number, count: number): Uint32Array {
    const bytes = count * pixels.BYTES_PER_ELEMENT;
    const offset = pixels.byteOffset + first * pixels.BYTES_PER_ELEMENT;
    if (offset % 4 === 0) return new Uint32Array(pixels.buffer, offset, bytes / 4);
    this.#aligned ??= new ArrayBuffer(bytes);
    new Uint8Array(this.#aligned).set(new Uint8Array(pixels.buffer, offset, bytes));
    return new Uint32Array(this.#aligned);
  }
}

/** Box sums of an 8-bit frame as words, `perBox` words per box row (see FrameBoxes). */
function sumWords8(words: Uint32Array, perRow: number, perBox: number, rows: Edges, sums: Float64Array): void {
  for (let r = 0; r < SIDE; r++) {
    const lo = rows.lo[r]!;
    const hi = rows.hi[r]!;
    for (let c = 0; c < SIDE; c++) {
      let halves = 0;
      for (let y = lo; y < hi; y++) {
        const at = y * perRow + c * perBox;
        for (let k = 0; k < perBox; k++) {
          const w = words[at + k]!;
          halves += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
        }
      }
      sums[r * SIDE + c] = (halves & 0xffff) + ((halves >>> 16) & 0xffff);
    }
  }
}

/** Box sums of a 16-bit frame as words of two pixels, `perBox` words per box row. */
function sumWords16(words: Uint32Array, perRow: number, perBox: number, rows: Edges, sums: Float64Array): void {
  for (let r = 0; r < SIDE; r++) {
    const lo = rows.lo[r]!;
    const hi = rows.hi[r]!;
    for (let c = 0; c < SIDE; c++) {
      let sum = 0;
      for (let y = lo; y < hi; y++) {
        const at = y * perRow + c * perBox;
        for (let k = 0; k < perBox; k++) {
          const w = words[at + k]!;
          sum += (w & 0xffff) + (w >>> 16);
        }
      }
      sums[r * SIDE + c] = sum;
    }
  }
}

/** Box sums of any frame, pixel by pixel: column sums over each box row, then over each box's columns. */
function sumPixels(pixels: Uint8Array | Uint16Array, base: number, columns: number, rows: Edges, columnEdges: Edges, rowSums: Uint32Array, sums: Float64Array): void {
  for (let r = 0; r < SIDE; r++) {
    rowSums.fill(0);
    for (let y = rows.lo[r]!; y < rows.hi[r]!; y++) {
      const row = base + y * columns;
      for (let x = 0; x < columns; x++) rowSums[x]! += pixels[row + x]!;
    }
    for (let c = 0; c < SIDE; c++) {
      let sum = 0;
      for (let x = columnEdges.lo[c]!; x < columnEdges.hi[c]!; x++) sum += rowSums[x]!;
      sums[r * SIDE + c] = sum;
    }
  }
}
