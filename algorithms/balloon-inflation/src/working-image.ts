import type { FrameLayout, FrameStack } from '@arteria/sdk';

/** The detector works on frames binned to about this many pixels on the short side. */
export const WORKING_SIZE = 256;

export interface Window {
  center: number;
  width: number;
}

/** One frame as log attenuation (0 = unattenuated, larger = denser), binned to the working size. */
export interface WorkingImage {
  width: number;
  height: number;
  /** Source pixels per working pixel along each axis. */
  bin: number;
  data: Float32Array;
}

/** Integer bin factor that brings the short side down to about WORKING_SIZE (never up). */
export function binFactor(rows: number, columns: number): number {
  return Math.max(1, Math.floor(Math.min(rows, columns) / WORKING_SIZE));
}

/** The header's window, or the full stored range when it has none. */
export function windowFor(frames: FrameLayout, center: number | undefined, width: number | undefined): Window {
  if (center !== undefined && width !== undefined && width > 1) return { center, width };
  const full = 2 ** frames.bitsStored;
  return { center: full / 2, width: full };
}

/**
 * Bins frame `index`, maps stored values through the window to transmitted intensity
 * (MONOCHROME1 inverted) and takes -log: dose changes become an offset, and structures add.
 */
export function workingImage(frames: FrameStack, index: number, window: Window): WorkingImage {
  const bin = binFactor(frames.rows, frames.columns);
  const width = Math.floor(frames.columns / bin);
  const height = Math.floor(frames.rows / bin);
  const sums = new Float64Array(width * height);
  const plane = frames.rows * frames.columns;
  const base = index * plane;
  const pixels = frames.pixels;
  const column = Int32Array.from({ length: width * bin }, (_, x) => Math.floor(x / bin));
  for (let y = 0; y < height * bin; y++) {
    const row = base + y * frames.columns;
    const out = Math.floor(y / bin) * width;
    for (let x = 0; x < width * bin; x++) sums[out + column[x]!]! += pixels[row + x]!;
  }
  const low = window.center - window.width / 2;
  const scale = 1 / (window.width * bin * bin);
  const offset = (low * bin * bin) / (window.width * bin * bin);
  const invert = frames.photometric === 'MONOCHROME1';
  const floor = 1 / 4096;
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) {
    let v = sums[i]! * scale - offset;
    if (invert) v = 1 - v;
    data[i] = -Math.log(v < floor ? floor : v > 1 ? 1 : v);
  }
  return { width, height, bin, data };
}
