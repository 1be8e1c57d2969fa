import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CHANNELS, CLIP, MEAN_FRAMES, REFERENCE_FRAMES, SIDE, boxEdges, prepareRun, selectInPlace } from '@arteria/balloon-inflation';
import { firstDifference, stackOf } from './rendered.js';

interface Expected {
  frames: number;
  rows: number;
  columns: number;
  bitsStored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  indices: number[];
  values: number[];
}


function largestDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe('pre-processing', () => {
  it('takes each box\'s temporal median by selection, the same value a sort gives', () => {
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (const n of [1, 2, 3, 4, 7, 40, 401]) {
      for (const levels of [3, 1000]) {
        const values = Float32Array.from({ length: n }, () => Math.floor(next() * levels) / 7 - 3);
        const sorted = Float32Array.from(values).sort();
        for (const k of new Set([0, (n - 1) >> 1, n - 1])) expect(selectInPlace(Float32Array.from(values), k)).toBe(sorted[k]);
      }
    }
  });

  it('computes what the training pipeline computed (train/py/prep.py) on a non-square MONOCHROME1 run with shutters', () => {
    const url = (name: string): URL => new URL(`fixtures/${name}`, import.meta.url);
    const expected = JSON.parse(readFileSync(url('prep-expected.json'), 'utf8')) as Expected;
    const raw = gunzipSync(readFileSync(url('prep-run.u16.gz')));
    const pixels = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
    const { tensor, frameCount } = prepareRun({ rows: expected.rows, columns: expected.columns, frameCount: expected.frames, bitsStored: expected.bitsStored, photometric: expected.photometric, frameTimeMs: 66.7, pixels });
    expect(frameCount).toBe(expected.frames);
    expect(expected.frames).toBeGreaterThan(REFERENCE_FRAMES);
    expect(tensor).toHaveLength(expected.frames * CHANNELS * SIDE * SIDE);
    let worst = 0;
    expected.indices.forEach((index, i) => (worst = Math.max(worst, Math.abs(tensor[index]! - expected.values[i]!))));
    expect(worst).toBeLessThan(1e-3);
  });

  it('gives each frame an input that depends only on the first frames and the frame itself (and the two before it)', { timeout: 120_000 }, () => {
    const whole = stackOf({ seed: 34, rows: 192, columns: 192, frames: 16, bitsStored: 12, inflation: { inflateStart: 6, inflatedStart: 9, deflateStart: 12, deflatedEnd: 14 } });
    const full = prepareRun(whole).tensor;
    const plane = CHANNELS * SIDE * SIDE;
    const frameSize = whole.rows * whole.columns;
    for (const frames of [REFERENCE_FRAMES, REFERENCE_FRAMES + 1, 12]) {
      const prefix = prepareRun({ ...whole, frameCount: frames, pixels: whole.pixels.subarray(0, frames * frameSize) }).tensor;
      expect(firstDifference(prefix, full.subarray(0, frames * plane)), `${frames} frames`).toBe(-1);
    }
    // A shorter run takes its statistics and reference from all of its frames.
    const short = prepareRun({ ...whole, frameCount: 5, pixels: whole.pixels.subarray(0, 5 * frameSize) }).tensor;
    expect(firstDifference(short, full.subarray(0, 5 * plane))).not.toBe(-1);
    // Channels: the frame, its difference from the reference, and the mean of the last frames' difference.
    const f = 11;
    const at = (frame: number, channel: number, p: number): number => full[frame * plane + channel * SIDE * SIDE + p]!;
    for (const p of [0, 5000, 8256, 16383]) {
      const reference = at(f, 0, p) - at(f, 1, p);
      let mean = 0;
      for (let g = f - MEAN_FRAMES + 1; g <= f; g++) mean += at(g, 0, p) / MEAN_FRAMES;
      expect(at(f, 2, p)).toBeCloseTo(mean - reference, 5);
      expect(at(3, 0, p) - at(3, 1, p)).toBeCloseTo(reference, 5);
    }
  });

  it('reduces any frame size to SIDE boxes that cover every source pixel once', () => {
    for (const n of [96, 128, 384, 500, 768, 1024]) {
      const { lo, hi } = boxEdges(n);
      expect(lo[0]).toBe(0);
      if (n >= SIDE) {
        expect(hi[SIDE - 1]).toBe(n);
        for (let i = 1; i < SIDE; i++) expect(lo[i]).toBe(hi[i - 1]);
      }
      for (let i = 0; i < SIDE; i++) expect(hi[i]! - lo[i]!).toBeGreaterThanOrEqual(1);
    }
  });

  it('gives the same model input for MONOCHROME1 and MONOCHROME2, and for 8 or 16 bits of the same image', { timeout: 120_000 }, () => {
    const base = stackOf({ seed: 32, rows: 256, columns: 256, frames: 6, bitsStored: 12, inflation: null });
    const reference = prepareRun(base).tensor;
    const top = 2 ** 12 - 1;
    const inverted = prepareRun({ ...base, photometric: 'MONOCHROME1', pixels: base.pixels.map((v) => top - v) }).tensor;
    expect(largestDifference(reference, inverted)).toBeLessThan(1e-4);
    const wider = prepareRun({ ...base, bitsStored: 16, pixels: Uint16Array.from(base.pixels, (v) => v * 16) }).tensor;
    expect(largestDifference(reference, wider)).toBeLessThan(1e-4);
  });

  it('flattens a closed shutter instead of turning its noise into structure', { timeout: 120_000 }, () => {
    const base = stackOf({ seed: 33, rows: 256, columns: 256, frames: 6, bitsStored: 12, inflation: null });
    // The left quarter behind a lead shutter: stored values at the floor with a little noise.
    const pixels = Uint16Array.from(base.pixels, (v, i) => (i % 256 < 64 ? (i * 7919) % 3 : v));
    const { tensor, statistics } = prepareRun({ ...base, pixels });
    const open = prepareRun(base).statistics;
    expect(Math.abs(statistics.centre - open.centre) / open.spread).toBeLessThan(0.2);
    // Behind the shutter: flat (its noise is a few stored units of thousands) and below all of the open field.
    const plane = CHANNELS * SIDE * SIDE;
    let lowest = Infinity;
    let highest = -Infinity;
    let openLowest = Infinity;
    for (let f = 0; f < 6; f++) {
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const v = tensor[f * plane + y * SIDE + x]!;
          if (x < 30) {
            lowest = Math.min(lowest, v);
            highest = Math.max(highest, v);
          } else if (x > 34) openLowest = Math.min(openLowest, v);
        }
      }
    }
    expect(highest - lowest).toBeLessThan(0.01);
    expect(highest).toBeLessThan(openLowest);
    expect(lowest).toBeGreaterThanOrEqual(-CLIP);
  });
});
