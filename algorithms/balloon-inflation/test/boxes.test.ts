import { describe, expect, it } from 'vitest';
import type { FrameStack } from '@arteria/sdk';
import { FrameBoxes, SIDE, boxEdges } from '../src/boxes.js';

/** Box means by their definition: each box's pixels summed as doubles, divided by their count. */
function definedMeans(frames: FrameStack, i: number, sign: number): Float64Array {
  const rows = boxEdges(frames.rows);
  const columns = boxEdges(frames.columns);
  const base = i * frames.rows * frames.columns;
  const means = new Float64Array(SIDE * SIDE);
  for (let r = 0; r < SIDE; r++) {
    for (let c = 0; c < SIDE; c++) {
      let sum = 0;
      for (let y = rows.lo[r]!; y < rows.hi[r]!; y++) for (let x = columns.lo[c]!; x < columns.hi[c]!; x++) sum += frames.pixels[base + y * frames.columns + x]!;
      means[r * SIDE + c] = (sign * sum) / ((rows.hi[r]! - rows.lo[r]!) * (columns.hi[c]! - columns.lo[c]!));
    }
  }
  return means;
}

/** Two frames of `bits`-bit noise (or every pixel at `fill`), starting `offset` pixels into their buffer. */
function framesOf(rows: number, columns: number, bits: 8 | 16, { offset = 0, fill }: { offset?: number; fill?: number } = {}): FrameStack {
  const count = 2 * rows * columns;
  const Type = bits === 8 ? Uint8Array : Uint16Array;
  const pixels = new Type(new ArrayBuffer((count + offset) * Type.BYTES_PER_ELEMENT), offset * Type.BYTES_PER_ELEMENT, count);
  let seed = rows * 31 + columns;
  for (let p = 0; p < count; p++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    pixels[p] = fill ?? seed >>> (32 - bits);
  }
  return { rows, columns, frameCount: 2, bitsStored: bits, photometric: 'MONOCHROME2', frameTimeMs: 66.7, pixels };
}

describe('box means', () => {
  // Geometries of each path: 8-bit words (aligned, unaligned, and at the largest box whose
  // byte sums still fit 16 bits, all 255), 16-bit words, and pixel by pixel (boxes too wide
  // for the 8-bit words, columns not a multiple of SIDE or of the word).
  const cases: [string, FrameStack][] = [
    ['8-bit 1024 x 1024', framesOf(1024, 1024, 8)],
    ['8-bit 1024 x 2048, unaligned', framesOf(1024, 2048, 8, { offset: 3 })],
    ['8-bit 2048 x 4096 at 255 (16 x 32 boxes)', framesOf(2048, 4096, 8, { fill: 255 })],
    ['8-bit 2368 x 4096 at 255 (18 and 19 x 32 boxes: pixel by pixel)', framesOf(2368, 4096, 8, { fill: 255 })],
    ['8-bit 500 x 700', framesOf(500, 700, 8)],
    ['8-bit 96 x 384 (boxes of one row)', framesOf(96, 384, 8, { offset: 1 })],
    ['16-bit 1024 x 1024', framesOf(1024, 1024, 16)],
    ['16-bit 1024 x 768, unaligned, at 65535', framesOf(1024, 768, 16, { offset: 1, fill: 65535 })],
    ['16-bit 131 x 97', framesOf(131, 97, 16)],
    ['16-bit 200 x 128 (boxes one pixel wide)', framesOf(200, 128, 16)],
  ];
  for (const [name, frames] of cases) {
    it(`are the defined means, bit for bit, and add them to the running sum: ${name}`, () => {
      const boxes = new FrameBoxes(frames);
      const out = new Float32Array(SIDE * SIDE);
      const meanSum = new Float64Array(SIDE * SIDE).fill(0.125);
      const expectedSum = new Float64Array(meanSum);
      for (const [i, sign] of [[0, 1], [1, -1]] as const) {
        const means = definedMeans(frames, i, sign);
        boxes.reduce(frames, i, sign, out, meanSum);
        for (let p = 0; p < means.length; p++) expectedSum[p]! += means[p]!;
        let differs = -1;
        for (let p = 0; p < means.length && differs < 0; p++) if (!Object.is(out[p], Math.fround(means[p]!)) || !Object.is(meanSum[p], expectedSum[p])) differs = p;
        expect(differs, `frame ${i}: first box that differs`).toBe(-1);
      }
    });
  }
});
