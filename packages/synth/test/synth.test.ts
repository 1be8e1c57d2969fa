import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ArteriaError } from '@arteria/protocol';
import { EVAL_PROFILE, RUN_KINDS, TRAIN_PROFILE, inflationEvents, normaliseBalloonRun, renderBalloonRun, sampleBalloonRun, type RenderedRun } from '@arteria/synth';

const digest = (run: RenderedRun): string => createHash('sha256').update(run.pixels).digest('hex');
const maxOf = (pixels: Uint8Array | Uint16Array): number => {
  let max = 0;
  for (const v of pixels) max = Math.max(max, v);
  return max;
};
const small = { rows: 128, columns: 128, frames: 24 } as const;

/** Mean stored value in a disc around a point of frame f. */
function meanAround(run: RenderedRun, f: number, x: number, y: number, radius: number): number {
  const { rows, columns } = run.truth.options;
  let sum = 0;
  let n = 0;
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      const px = Math.round(x + dx);
      const py = Math.round(y + dy);
      if (dx * dx + dy * dy > radius * radius || px < 0 || py < 0 || px >= columns || py >= rows) continue;
      sum += run.pixels[f * rows * columns + py * columns + px]!;
      n++;
    }
  }
  return sum / n;
}

describe('renderBalloonRun', () => {
  it('is deterministic: same options, same pixels; another seed, other pixels', () => {
    const a = renderBalloonRun({ ...small, seed: 7 });
    const b = renderBalloonRun({ ...small, seed: 7 });
    const c = renderBalloonRun({ ...small, seed: 8 });
    expect(digest(a)).toBe(digest(b));
    expect(a.truth).toEqual(b.truth);
    expect(digest(c)).not.toBe(digest(a));
  });

  it('gives per-frame ground truth that follows the inflation phases', () => {
    const inflation = { inflateStart: 4, inflatedStart: 8, deflateStart: 14, deflatedEnd: 18 };
    const { truth } = renderBalloonRun({ ...small, seed: 3, inflation });
    const phases = truth.perFrame.map((p) => p.phase);
    expect(phases.slice(0, 4)).toEqual(['deflated', 'deflated', 'deflated', 'deflated']);
    expect(phases.slice(4, 8)).toEqual(['inflating', 'inflating', 'inflating', 'inflating']);
    expect(phases.slice(8, 14).every((p) => p === 'inflated')).toBe(true);
    expect(phases.slice(14, 18).every((p) => p === 'deflating')).toBe(true);
    expect(phases.slice(18).every((p) => p === 'deflated')).toBe(true);
    const fills = truth.perFrame.map((p) => p.fill);
    for (let f = 4; f < 8; f++) expect(fills[f]!).toBeGreaterThan(fills[f - 1]!);
    for (let f = 15; f < 18; f++) expect(fills[f]!).toBeLessThan(fills[f - 1]!);
    expect(truth.events).toEqual(inflationEvents(fills));
    expect(truth.events).toHaveLength(1);
    expect(truth.events[0]!.startFrame).toBeGreaterThanOrEqual(5);
    expect(truth.events[0]!.startFrame).toBeLessThanOrEqual(7);
    expect(truth.events[0]!.endFrame).toBeGreaterThanOrEqual(14);
    expect(truth.events[0]!.endFrame).toBeLessThanOrEqual(16);
    expect(truth.perFrame.every((p) => p.markers !== null)).toBe(true);
    expect(truth.frameTimeMs).toBeCloseTo(1000 / 15, 6);
  });

  it('draws dense markers where the truth says, and a balloon that darkens when inflated', () => {
    const run = renderBalloonRun({ rows: 256, columns: 256, frames: 20, seed: 11, dose: 4, inflation: { inflateStart: 6, inflatedStart: 9, deflateStart: 14, deflatedEnd: 17 } });
    const deflated = run.truth.perFrame[2]!;
    const inflated = run.truth.perFrame[11]!;
    expect(inflated.inflated).toBe(true);
    for (const frame of [2, 11]) {
      for (const m of run.truth.perFrame[frame]!.markers!) {
        // MONOCHROME2: denser is darker, so the marker is below the ring around it.
        expect(meanAround(run, frame, m.x, m.y, 1)).toBeLessThan(meanAround(run, frame, m.x, m.y, 8) * 0.9);
      }
    }
    const mid = (p: typeof deflated): { x: number; y: number } => ({ x: (p.markers![0].x + p.markers![1].x) / 2, y: (p.markers![0].y + p.markers![1].y) / 2 });
    const d = mid(deflated);
    const i = mid(inflated);
    expect(meanAround(run, 11, i.x, i.y, 2)).toBeLessThan(meanAround(run, 2, d.x, d.y, 2) * 0.85);
  });

  it('stores 8-bit runs in bytes and 16-bit runs in words, within the stored range', () => {
    const eight = renderBalloonRun({ ...small, seed: 5, bitsStored: 8 });
    expect(eight.pixels).toBeInstanceOf(Uint8Array);
    expect(eight.truth.bitsAllocated).toBe(8);
    const ten = renderBalloonRun({ ...small, seed: 5, bitsStored: 10 });
    expect(ten.pixels).toBeInstanceOf(Uint16Array);
    expect(maxOf(ten.pixels)).toBeLessThanOrEqual(1023);
    expect(maxOf(ten.pixels)).toBeGreaterThan(300);
    const sixteen = renderBalloonRun({ ...small, seed: 5, bitsStored: 16 });
    expect(maxOf(sixteen.pixels)).toBeGreaterThan(20_000);
  });

  it('inverts MONOCHROME1 runs', () => {
    const m2 = renderBalloonRun({ ...small, seed: 9, bitsStored: 12 });
    const m1 = renderBalloonRun({ ...small, seed: 9, bitsStored: 12, photometric: 'MONOCHROME1' });
    for (let i = 0; i < m2.pixels.length; i += 997) expect(m1.pixels[i]).toBe(4095 - m2.pixels[i]!);
  });

  it('renders balloon-free runs without markers or events, with contrast and table pan', () => {
    const run = renderBalloonRun({ ...small, seed: 12, device: 'none', contrast: { startFrame: 3, peakFrame: 8, endFrame: 16 }, tablePan: { startFrame: 10, endFrame: 20, dx: 0.2, dy: -0.1 } });
    expect(run.truth.events).toEqual([]);
    expect(run.truth.perFrame.every((p) => p.markers === null && p.phase === 'none' && !p.inflated)).toBe(true);
    expect(run.truth.perFrame[8]!.contrast).toBe(1);
    expect(run.truth.perFrame[1]!.contrast).toBe(0);
    // The pan moves the whole field: the last frame differs from the one before the pan far more than noise.
    const plane = 128 * 128;
    let change = 0;
    for (let i = 0; i < plane; i++) change += Math.abs(run.pixels[23 * plane + i]! - run.pixels[9 * plane + i]!);
    let noise = 0;
    for (let i = 0; i < plane; i++) noise += Math.abs(run.pixels[1 * plane + i]! - run.pixels[0 * plane + i]!);
    expect(change).toBeGreaterThan(noise * 2);
  });

  it('refuses phases that do not fit the run', () => {
    expect(() => normaliseBalloonRun({ frames: 10, inflation: { inflateStart: 2, inflatedStart: 5, deflateStart: 8, deflatedEnd: 12 } })).toThrow(ArteriaError);
    expect(() => normaliseBalloonRun({ device: 'none', inflation: { inflateStart: 2, inflatedStart: 3, deflateStart: 4, deflatedEnd: 5 } })).toThrow(/without a balloon/);
    expect(() => normaliseBalloonRun({ rows: 8 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(normaliseBalloonRun({ frames: 100 }).inflation).toEqual({ inflateStart: 25, inflatedStart: 35, deflateStart: 65, deflatedEnd: 75 });
  });
});

describe('sampleBalloonRun', () => {
  it('draws the same options from the same seed, and every kind of run', () => {
    expect(sampleBalloonRun({ seed: 42, rows: 256, columns: 256 })).toEqual(sampleBalloonRun({ seed: 42, rows: 256, columns: 256 }));
    const kinds = new Set(Array.from({ length: 200 }, (_, i) => sampleBalloonRun({ seed: i, rows: 256, columns: 256 }).kind));
    expect([...kinds].sort()).toEqual([...RUN_KINDS].sort());
  });

  it('makes each kind what it says', () => {
    for (const kind of RUN_KINDS) {
      for (const profile of [TRAIN_PROFILE, EVAL_PROFILE]) {
        const { options } = sampleBalloonRun({ seed: 77, rows: 512, columns: 512, profile, kind });
        expect(options.inflation !== null).toBe(kind.startsWith('inflation'));
        expect(options.contrast !== null).toBe(kind.includes('contrast'));
        if (kind === 'table-pan') expect(options.tablePan).not.toBeNull();
        if (kind === 'no-device' || kind === 'contrast-no-balloon') expect(options.device).toBe('none');
        expect(options.frames).toBeGreaterThanOrEqual(profile.frames[0]);
        expect(options.frames).toBeLessThanOrEqual(profile.frames[1]);
        expect(profile.frameRatesHz).toContain(options.frameRateHz);
      }
    }
  });
});
