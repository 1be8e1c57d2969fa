import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeXaRun } from '@arteria/dicom';
import { exec } from './dicom-tools.js';

export interface SingleFrameSeriesOptions {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  count: number;
  rows: number;
  columns: number;
  /** Frame `i`'s 8-bit samples (rows x columns of them). */
  frame: (i: number) => Uint8Array;
  /** Other dimensions for frame `i` (its samples are then zero); default the series'. */
  sizes?: (i: number) => [number, number];
  /** File name of frame `i`; default `frame-{i}.dcm`. */
  name?: (i: number) => string;
}

/**
 * Single-frame XA instances as a modality that stores a run frame by frame writes them: no
 * Number of Frames, Frame Time or Cine Rate (DCMTK's dcmodify removes what writeXaRun
 * writes); Instance Number and Acquisition Time say the order, at 15 frames/s.
 */
export async function writeSingleFrameSeries(folder: string, options: SingleFrameSeriesOptions): Promise<string[]> {
  const { rows, columns } = options;
  const files: string[] = [];
  for (let i = 0; i < options.count; i++) {
    const [r, c] = options.sizes?.(i) ?? [rows, columns];
    const pixels = r === rows && c === columns ? options.frame(i) : new Uint8Array(r * c);
    const file = join(folder, options.name?.(i) ?? `frame-${i}.dcm`);
    const series = options.seriesInstanceUid;
    await writeFile(file, writeXaRun({ rows: r, columns: c, frames: 1, pixels, bitsStored: 8, frameTimeMs: 100, studyInstanceUid: options.studyInstanceUid, seriesInstanceUid: series, sopInstanceUid: `${series}.${i + 1}`, studyDate: '20240315', studyTime: '120000' }));
    const seconds = (i / 15).toFixed(6).split('.');
    const time = `1200${String(Number(seconds[0])).padStart(2, '0')}.${seconds[1]}`;
    await exec('dcmodify', ['-nb', '-e', '(0028,0008)', '-e', '(0018,1063)', '-e', '(0028,0009)', '-e', '(0018,0040)', '-i', `(0020,0013)=${i + 1}`, '-i', `(0008,0032)=${time}`, file]);
    files.push(file);
  }
  return files;
}
