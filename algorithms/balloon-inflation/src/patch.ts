import type { MarkerPair } from './markers.js';
import type { WorkingImage } from './working-image.js';

/** Model input: samples along the marker axis by samples across it. */
export const PATCH_ROWS = 16;
export const PATCH_COLUMNS = 32;
/** The patch reaches this share of the marker spacing beyond each marker, so the model sees whether density stops at the markers. */
const REACH_BEYOND = 0.5;
const HALF_HEIGHT = 0.5;

/**
 * Resamples the image into a patch aligned with the marker axis (bilinear), minus its
 * median: a balloon at any angle, length and dose looks the same to the model.
 */
export function extractPatch(image: WorkingImage, { a, b }: MarkerPair, out: Float32Array = new Float32Array(PATCH_ROWS * PATCH_COLUMNS), offset = 0): Float32Array {
  const ux = b.x - a.x;
  const uy = b.y - a.y;
  for (let r = 0; r < PATCH_ROWS; r++) {
    const v = HALF_HEIGHT * (2 * (r + 0.5) / PATCH_ROWS - 1);
    for (let c = 0; c < PATCH_COLUMNS; c++) {
      const u = -REACH_BEYOND + ((1 + 2 * REACH_BEYOND) * (c + 0.5)) / PATCH_COLUMNS;
      out[offset + r * PATCH_COLUMNS + c] = bilinear(image, a.x + u * ux - v * uy, a.y + u * uy + v * ux);
    }
  }
  const view = out.subarray(offset, offset + PATCH_ROWS * PATCH_COLUMNS);
  const median = Float32Array.from(view).sort()[view.length >> 1]!;
  for (let i = 0; i < view.length; i++) view[i]! -= median;
  return out;
}

function bilinear({ width, height, data }: WorkingImage, x: number, y: number): number {
  const cx = Math.min(width - 1.001, Math.max(0, x));
  const cy = Math.min(height - 1.001, Math.max(0, y));
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const fx = cx - x0;
  const fy = cy - y0;
  const i = y0 * width + x0;
  const top = data[i]! * (1 - fx) + data[i + 1]! * fx;
  const bottom = data[i + width]! * (1 - fx) + data[i + width + 1]! * fx;
  return top * (1 - fy) + bottom * fy;
}
