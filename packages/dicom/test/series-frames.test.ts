import { describe, expect, it } from 'vitest';
import { orderSeriesFrames, readHeader, seriesFrameOf, seriesFrameTimeMs, writeXaRun, type SeriesFrame } from '@arteria/dicom';
import { writeColorRun } from '@arteria/testing';
import { expectArteriaError } from './helpers.js';

const header = readHeader(writeXaRun({ rows: 8, columns: 8, frames: 1, pixels: new Uint8Array(64), bitsStored: 8, frameTimeMs: 100 }));
const frame = (uid: string, instanceNumber: number | undefined, timeMs: number | undefined, rows = 8): SeriesFrame => ({
  header: { ...header, sopInstanceUid: uid, rows },
  instanceNumber,
  timeMs,
  encapsulated: false,
  spans: [{ offset: 0, length: rows * 8 }],
});

describe('a series of single frames in order', () => {
  it('goes by Instance Number, else by acquisition time, else as given', () => {
    const uids = (frames: SeriesFrame[]): string[] => frames.map((f) => f.header.sopInstanceUid);
    expect(uids(orderSeriesFrames([frame('c', 3, 10), frame('a', 1, 30), frame('b', 2, 20)]))).toEqual(['a', 'b', 'c']);
    // Instance numbers repeated (two acquisitions numbered alike): the times decide.
    expect(uids(orderSeriesFrames([frame('c', 1, 30), frame('a', 1, 10), frame('b', 2, 20)]))).toEqual(['a', 'b', 'c']);
    expect(uids(orderSeriesFrames([frame('x', undefined, undefined), frame('y', 1, 5)]))).toEqual(['x', 'y']);
  });

  it('takes an instance given twice (a file copied, an export repeated) as one frame', () => {
    const uids = (frames: SeriesFrame[]): string[] => frames.map((f) => f.header.sopInstanceUid);
    expect(uids(orderSeriesFrames([frame('b', 2, 20), frame('a', 1, 10), frame('b', 2, 20), frame('c', 3, 30)]))).toEqual(['a', 'b', 'c']);
  });

  it('has the mean interval of increasing acquisition times as its frame time, else none', () => {
    expect(seriesFrameTimeMs([frame('a', 1, 0), frame('b', 2, 66), frame('c', 3, 134)])).toBe(67);
    expect(seriesFrameTimeMs([frame('a', 1, 0), frame('b', 2, 0)])).toBeUndefined();
    expect(seriesFrameTimeMs([frame('a', 1, 0), frame('b', 2, undefined)])).toBeUndefined();
  });

  it('refuses frames of different sizes, naming the odd one', () => {
    const message = expectArteriaError(() => orderSeriesFrames([frame('a', 1, 0), frame('b', 2, 10, 16)]), 'UNSUPPORTED_DICOM');
    expect(message).toContain('instance b is 16 8');
  });

  it('takes a color frame whole: three samples a pixel', () => {
    const frame = seriesFrameOf(writeColorRun({ rows: 6, columns: 5, frames: 1, rgb: () => [1, 2, 3] }));
    expect(frame.spans).toEqual([{ offset: expect.any(Number) as number, length: 6 * 5 * 3 }]);
  });
});
