import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { ARTERIA_UID_ROOT, assertMultiFrameRun, decodeFrames, newUid, synthesizeXaRun, type FrameStack } from '@arteria/dicom';
import { dcmtk, expectArteriaError, scratch } from './helpers.js';

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;

/** Mean of one frame, in MONOCHROME2 sense (higher = more transmitted). */
function frameMean(frames: FrameStack, f: number): number {
  const plane = frames.rows * frames.columns;
  const max = 2 ** frames.bitsStored - 1;
  let sum = 0;
  for (let i = f * plane; i < (f + 1) * plane; i++) sum += frames.pixels[i] ?? 0;
  const mean = sum / plane / max;
  return frames.photometric === 'MONOCHROME1' ? 1 - mean : mean;
}

describe('synthesizeXaRun', () => {
  let tmp: Awaited<ReturnType<typeof scratch>>;
  beforeAll(async () => {
    tmp = await scratch();
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('is deterministic: same options, same bytes', () => {
    const a = synthesizeXaRun({ seed: 42, frames: 12 });
    const b = synthesizeXaRun({ seed: 42, frames: 12 });
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.truth).toEqual(b.truth);
    const c = synthesizeXaRun({ seed: 43, frames: 12 });
    expect(a.bytes.equals(c.bytes)).toBe(false);
    expect(c.truth.sopInstanceUid).not.toBe(a.truth.sopInstanceUid);
  });

  it('writes a run that DCMTK reads without complaint', async () => {
    const { bytes, truth } = synthesizeXaRun({ seed: 7, frames: 8, patient: { name: 'Roe^Richard', id: 'R-7' } });
    const path = tmp.path('synthetic.dcm');
    await writeFile(path, bytes);
    const { stdout, stderr } = await dcmtk('dcmdump', ['-M', path]);
    expect(stderr).toBe('');
    expect(stdout).toContain('=XRayAngiographicImageStorage');
    expect(stdout).toContain('[Roe^Richard]');
    expect(stdout).toContain('[R-7]');
    expect(stdout).toMatch(/\(0028,0008\) IS \[8\]/);
    expect(stdout).toMatch(/\(0028,0009\) AT \(0018,1063\)/);
    expect(stdout).toContain(truth.studyInstanceUid);
  });

  it.each([8, 10, 12, 14, 16] as const)('writes %i-bit runs that decode to the declared shape', (bitsStored) => {
    const { bytes, truth } = synthesizeXaRun({ seed: 1, rows: 40, columns: 56, frames: 5, bitsStored, frameRateHz: 30 });
    const { header, frames } = decodeFrames(bytes);
    assertMultiFrameRun(header);
    expect(header.bitsAllocated).toBe(bitsStored === 8 ? 8 : 16);
    expect(truth.bitsAllocated).toBe(header.bitsAllocated);
    expect(frames).toMatchObject({ rows: 40, columns: 56, frameCount: 5, bitsStored });
    expect(frames.frameTimeMs).toBeCloseTo(1000 / 30, 2);
    const max = Math.max(...frames.pixels);
    expect(max).toBeLessThan(2 ** bitsStored);
    expect(max).toBeGreaterThan(2 ** bitsStored * 0.4);
  });

  it('darkens the image with contrast, in both photometric interpretations', () => {
    for (const photometric of ['MONOCHROME2', 'MONOCHROME1'] as const) {
      const contrast = { startFrame: 3, peakFrame: 8, endFrame: 14 };
      const { bytes, truth } = synthesizeXaRun({ seed: 5, frames: 20, contrast, photometric });
      const { frames } = decodeFrames(bytes);
      expect(frames.photometric).toBe(photometric);
      expect(truth.opacification[2]).toBe(0);
      expect(truth.opacification[3]).toBeGreaterThan(0);
      expect(truth.opacification[8]).toBe(1);
      expect(truth.opacification[14]).toBeGreaterThan(0);
      expect(truth.opacification[15]).toBe(0);
      expect(frameMean(frames, 8)).toBeLessThan(frameMean(frames, 0) - 0.005);
      expect(frameMean(frames, 19)).toBeCloseTo(frameMean(frames, 0), 2);
    }
  });

  it('has no contrast when asked for none', () => {
    const { truth } = synthesizeXaRun({ seed: 5, frames: 10, contrast: null });
    expect(truth.contrast).toBeNull();
    expect(truth.opacification.every((o) => o === 0)).toBe(true);
  });

  it('rejects options it cannot honour', () => {
    expectArteriaError(() => synthesizeXaRun({ rows: 0 }), 'CONFIG_INVALID');
    expectArteriaError(() => synthesizeXaRun({ bitsStored: 9 as 8 }), 'CONFIG_INVALID');
    expectArteriaError(() => synthesizeXaRun({ frames: 10, contrast: { startFrame: 5, peakFrame: 3, endFrame: 8 } }), 'CONFIG_INVALID');
    expectArteriaError(() => synthesizeXaRun({ frames: 10, contrast: { startFrame: 1, peakFrame: 3, endFrame: 10 } }), 'CONFIG_INVALID');
  });
});

describe('newUid', () => {
  it('makes valid UIDs under the Arteria root, random or seeded', () => {
    const random = [newUid(), newUid()];
    expect(random[0]).not.toBe(random[1]);
    for (const uid of [...random, newUid('a'), newUid(7)]) {
      expect(uid.startsWith(`${ARTERIA_UID_ROOT}.`)).toBe(true);
      expect(uid).toMatch(UID);
      expect(uid.length).toBeLessThanOrEqual(64);
    }
    expect(newUid('same')).toBe(newUid('same'));
    expect(newUid('same')).not.toBe(newUid('other'));
  });
});
