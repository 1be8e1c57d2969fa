// The link meter behind segmentEncoding auto: bytes per second of time with an upload on its
// way, uploads side by side merged, old ones forgotten, nothing said from too little.
import { describe, expect, it } from 'vitest';
import { LinkMeter } from '../src/upload/link-meter.js';
import { AUTO_COMPRESS_BELOW_BYTES_PER_SECOND, chosenEncoding } from '../src/segmented/segment-encoding.js';

const MB = 1e6;

describe('link meter', () => {
  it('divides the bytes by the time any upload was on its way: side by side uploads share it', () => {
    const meter = new LinkMeter(20_000, 1);
    // Four uploads of 10 MB over the same second, then one more the next second: 50 MB in 2 s.
    for (let i = 0; i < 4; i++) meter.record(10 * MB, 1000 + i, 2000);
    meter.record(10 * MB, 2000, 3000);
    expect(meter.bytesPerSecond(3000)).toBeCloseTo(25 * MB, -3);
  });

  it('leaves idle time out, forgets uploads older than its window, and says nothing from too little', () => {
    const meter = new LinkMeter(10_000, 5 * MB);
    meter.record(4 * MB, 0, 1000);
    expect(meter.bytesPerSecond(1000)).toBeUndefined(); // 4 MB: too little to tell
    meter.record(4 * MB, 5000, 6000); // four idle seconds between: not the link's time
    expect(meter.bytesPerSecond(6000)).toBeCloseTo(4 * MB, -3);
    expect(meter.bytesPerSecond(12_000)).toBeUndefined(); // the first is out of the window
    meter.record(100 * MB, 12_000, 13_000);
    expect(meter.bytesPerSecond(13_000)).toBeCloseTo(52 * MB, -3);
  });
});

describe('segmentEncoding auto', () => {
  const link = (cap: number | undefined, measured: number | undefined) => ({ capBytesPerSecond: cap, measuredBytesPerSecond: () => measured });

  it('compresses while the link is capped or measured under the threshold, not while it is fast or unknown', () => {
    expect(chosenEncoding('auto', link(undefined, undefined))).toBe('none');
    expect(chosenEncoding('auto', link(undefined, 119 * MB))).toBe('none'); // 1 Gb/s
    expect(chosenEncoding('auto', link(undefined, 36 * MB))).toBe('br'); // 300 Mb/s
    expect(chosenEncoding('auto', link(10 * MB, undefined))).toBe('br'); // capped before anything was measured
    expect(chosenEncoding('auto', link(100 * MB, 12 * MB))).toBe('br'); // the slower of the two
    expect(AUTO_COMPRESS_BELOW_BYTES_PER_SECOND).toBe(40 * MB);
  });

  it('leaves the other settings as they are', () => {
    expect(chosenEncoding('br', link(undefined, 119 * MB))).toBe('br');
    expect(chosenEncoding('none', link(1 * MB, 1 * MB))).toBe('none');
  });
});
