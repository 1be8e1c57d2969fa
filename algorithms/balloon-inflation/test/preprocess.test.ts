import { describe, expect, it } from 'vitest';
import { extractPatch, findMarkers, PATCH_COLUMNS, PATCH_ROWS, prepareRun, windowFor, workingImage, type MarkerPair } from '@arteria/balloon-inflation';
import type { FrameStack } from '@arteria/sdk';
import { renderBalloonRun, type BalloonRunInput, type RenderedRun } from '@arteria/synth';

function stackOf({ pixels, truth }: RenderedRun): FrameStack {
  const o = truth.options;
  return { rows: o.rows, columns: o.columns, frameCount: o.frames, bitsStored: o.bitsStored, photometric: o.photometric, frameTimeMs: truth.frameTimeMs, pixels };
}

/** Largest distance between found and true markers, in working-image pixels. */
function markerError(found: MarkerPair, truth: readonly { x: number; y: number }[], bin: number): number {
  const t = truth.map((p) => ({ x: (p.x + 0.5) / bin - 0.5, y: (p.y + 0.5) / bin - 0.5 }));
  const d = (p: { x: number; y: number }, q: { x: number; y: number }): number => Math.hypot(p.x - q.x, p.y - q.y);
  return Math.min(Math.max(d(found.a, t[0]!), d(found.b, t[1]!)), Math.max(d(found.a, t[1]!), d(found.b, t[0]!)));
}

const base: BalloonRunInput = { frames: 12, inflation: { inflateStart: 3, inflatedStart: 5, deflateStart: 8, deflatedEnd: 10 } };

describe('pre-processing', () => {
  it.each([
    ['256x256, 8-bit', { rows: 256, columns: 256, bitsStored: 8 }, 1],
    ['512x512, 12-bit', { rows: 512, columns: 512, bitsStored: 12 }, 2],
    ['1024x1024, 16-bit, MONOCHROME1', { rows: 1024, columns: 1024, bitsStored: 16, photometric: 'MONOCHROME1' as const, frames: 6, inflation: null }, 4],
    ['384x640, 10-bit', { rows: 384, columns: 640, bitsStored: 10 }, 1],
    ['768x768, 14-bit, MONOCHROME1', { rows: 768, columns: 768, bitsStored: 14, photometric: 'MONOCHROME1' as const }, 3],
  ])('bins %s to the working size and finds the markers', (_name, options, bin) => {
    const run = renderBalloonRun({ ...base, seed: 31, ...options });
    const stack = stackOf(run);
    const window = windowFor(stack, undefined, undefined);
    for (const f of [0, 4]) {
      const image = workingImage(stack, f, window);
      expect(image.bin).toBe(bin);
      expect(image.width).toBe(Math.floor(options.columns / bin));
      expect(image.height).toBe(Math.floor(options.rows / bin));
      const found = findMarkers(image);
      expect(found).not.toBeNull();
      expect(markerError(found!, run.truth.perFrame[f]!.markers!, bin)).toBeLessThan(1.5);
    }
  });

  it('gives the same log-attenuation image for MONOCHROME1 and MONOCHROME2, and for any bit depth', () => {
    const images = (['MONOCHROME2', 'MONOCHROME1'] as const).flatMap((photometric) =>
      [8, 16].map((bitsStored) => {
        const stack = stackOf(renderBalloonRun({ ...base, seed: 32, rows: 256, columns: 256, photometric, bitsStored, dose: 20 }));
        return workingImage(stack, 2, windowFor(stack, undefined, undefined)).data;
      }),
    );
    const [reference, ...others] = images;
    for (const other of others) {
      let error = 0;
      for (let i = 0; i < reference!.length; i++) error += Math.abs(other[i]! - reference![i]!);
      expect(error / reference!.length).toBeLessThan(0.02);
    }
  });

  it('applies the header window', () => {
    const stack = stackOf(renderBalloonRun({ ...base, seed: 33, rows: 256, columns: 256, bitsStored: 12 }));
    const full = workingImage(stack, 0, windowFor(stack, undefined, undefined)).data;
    // A window over the lower half of the range doubles transmitted intensity: log attenuation falls by ln 2.
    const half = workingImage(stack, 0, windowFor(stack, 1024, 2048)).data;
    const i = 128 * 256 + 128;
    expect(full[i]! - half[i]!).toBeCloseTo(Math.log(2), 1);
    expect(windowFor(stack, 100, 0)).toEqual({ center: 2048, width: 4096 });
  });

  it('cuts marker-aligned patches with zero median, one per frame with markers', () => {
    const prepared = prepareRun(stackOf(renderBalloonRun({ ...base, seed: 34, rows: 256, columns: 256 })));
    expect(prepared.frameCount).toBe(12);
    expect(prepared.patchFrames).toEqual([...Array(12).keys()]);
    expect(prepared.patches).toHaveLength(12 * PATCH_ROWS * PATCH_COLUMNS);
    const patch = prepared.patches.subarray(0, PATCH_ROWS * PATCH_COLUMNS);
    const sorted = Float32Array.from(patch).sort();
    expect(sorted[sorted.length >> 1]).toBe(0);
    // The inflated balloon fills the middle of the patch: denser than the deflated one.
    const centre = (f: number): number => {
      const p = prepared.patches.subarray(f * PATCH_ROWS * PATCH_COLUMNS, (f + 1) * PATCH_ROWS * PATCH_COLUMNS);
      let sum = 0;
      for (let r = 6; r < 10; r++) for (let c = 10; c < 22; c++) sum += p[r * PATCH_COLUMNS + c]!;
      return sum / 48;
    };
    expect(centre(6)).toBeGreaterThan(centre(0) + 0.1);
  });

  it('orders the markers and turns the patch with them', () => {
    const run = renderBalloonRun({ ...base, seed: 36, rows: 256, columns: 256 });
    const stack = stackOf(run);
    const image = workingImage(stack, 0, windowFor(stack, undefined, undefined));
    const pair = findMarkers(image)!;
    expect(pair.a.x).toBeLessThanOrEqual(pair.b.x);
    const forward = extractPatch(image, pair);
    const backward = extractPatch(image, { a: pair.b, b: pair.a });
    // Swapping the markers turns the patch by 180 degrees.
    for (let r = 0; r < PATCH_ROWS; r++) {
      for (let c = 0; c < PATCH_COLUMNS; c++) {
        expect(backward[(PATCH_ROWS - 1 - r) * PATCH_COLUMNS + (PATCH_COLUMNS - 1 - c)]).toBeCloseTo(forward[r * PATCH_COLUMNS + c]!, 4);
      }
    }
  });
});
