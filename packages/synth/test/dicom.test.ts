import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrames } from '@arteria/dicom';
import { renderBalloonRun, synthesizeBalloonRun } from '@arteria/synth';

const run = promisify(execFile);

describe('synthesizeBalloonRun', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arteria-synth-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['512x512, 12-bit, 15 Hz', { seed: 21, rows: 512, columns: 512, frames: 6, bitsStored: 12, frameRateHz: 15, inflation: null }],
    ['1024x1024, 16-bit, 30 Hz, MONOCHROME1', { seed: 22, rows: 1024, columns: 1024, frames: 2, bitsStored: 16, frameRateHz: 30, photometric: 'MONOCHROME1' as const, inflation: null }],
    ['512x512, 8-bit, 7.5 Hz', { seed: 23, rows: 512, columns: 512, frames: 4, bitsStored: 8, frameRateHz: 7.5, inflation: null }],
  ])('writes %s that decodes to the rendered pixels and passes dcmdump', async (_name, options) => {
    const { bytes, truth, sopInstanceUid } = synthesizeBalloonRun(options);
    expect(synthesizeBalloonRun(options).bytes.equals(bytes)).toBe(true);
    const { header, frames } = decodeFrames(bytes);
    expect(header).toMatchObject({ modality: 'XA', rows: options.rows, columns: options.columns, numberOfFrames: options.frames, bitsStored: options.bitsStored, sopInstanceUid });
    expect(frames.photometric).toBe(truth.options.photometric);
    expect(frames.frameTimeMs).toBeCloseTo(1000 / options.frameRateHz, 2);
    expect(Buffer.from(frames.pixels.buffer, frames.pixels.byteOffset, frames.pixels.byteLength).equals(Buffer.from(renderBalloonRun(options).pixels.buffer))).toBe(true);
    expect(truth.options.frames).toBe(options.frames);

    const file = join(dir, `${options.seed}.dcm`);
    await writeFile(file, bytes);
    const { stdout, stderr } = await run('dcmdump', [file], { maxBuffer: 1 << 24 });
    expect(stdout).toContain('(0008,0060) CS [XA]');
    expect(stdout).toContain(`(0028,0008) IS [${options.frames}]`);
    expect(stderr).toBe('');
  });
});
