// What a gateway with segmentEncoding br puts in a segment object: compressed frames when
// that shrinks them within what the platform expands (MAX_SEGMENT_EXPANSION), else the
// frames as they are.
import { randomBytes } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { synthesizeXaRun } from '@arteria/dicom';
import { MAX_SEGMENT_EXPANSION } from '@arteria/protocol';
import { encodeSegment } from '../src/segmented/segment-encoding.js';

const FRAME = 64 * 64;

describe('segment encoding at the gateway', () => {
  it('compresses X-ray frames, losslessly and to the same bytes every time', async () => {
    const run = synthesizeXaRun({ seed: 5, rows: 64, columns: 64, frames: 10, bitsStored: 8 }).bytes;
    const frames = Buffer.from(run.subarray(run.length - 10 * FRAME));
    const once = await encodeSegment(frames, 'br');
    expect(once.encoding).toBe('br');
    expect(once.bytes.length).toBeLessThan(frames.length);
    expect(brotliDecompressSync(once.bytes).equals(frames)).toBe(true);
    expect((await encodeSegment(frames, 'br')).bytes.equals(once.bytes)).toBe(true);
  });

  it('sends as they are frames that do not shrink, and frames that shrink more than the platform expands', async () => {
    const noise = randomBytes(10 * FRAME);
    expect(await encodeSegment(noise, 'br')).toEqual({ bytes: noise, encoding: undefined });
    const blank = Buffer.alloc(10 * FRAME);
    expect(await encodeSegment(blank, 'br')).toEqual({ bytes: blank, encoding: undefined });
    expect(MAX_SEGMENT_EXPANSION).toBeGreaterThan(2); // X-ray frames (1.2-2x) are never sent raw for it
    expect(await encodeSegment(blank, 'none')).toEqual({ bytes: blank, encoding: undefined });
  });
});
