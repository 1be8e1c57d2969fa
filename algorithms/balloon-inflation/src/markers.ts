import type { WorkingImage } from './working-image.js';

export interface MarkerPoint {
  x: number;
  y: number;
  /** Blob response: how much denser than its surroundings, log attenuation. */
  response: number;
}

export interface MarkerPair {
  a: MarkerPoint;
  b: MarkerPoint;
}

/** Below this blob response a point is not taken for a radio-opaque marker. */
export const MIN_MARKER_RESPONSE = 0.22;
/** Marker spacing (balloon length) as a share of the working image's short side. */
const MIN_SPACING = 0.03;
const MAX_SPACING = 0.13;
const MAX_CANDIDATES = 10;

/**
 * Finds the two balloon markers: small blobs much denser than their surroundings in every
 * direction but possibly one. The response is the smoothed value minus, over four axes,
 * the largest of the lesser neighbour on each axis: a line (catheter, wire, vessel) has a
 * dense neighbour on both sides along itself and scores low, while a marker at the end of
 * a filled balloon still has the shaft or background on its other side.
 */
export function findMarkers(image: WorkingImage): MarkerPair | null {
  const { width, height } = image;
  const smooth = smooth121(image);
  const scale = Math.max(1, Math.round(Math.min(width, height) / 256));
  const d = 3 * scale;
  const axes = [
    [d, 0],
    [0, d],
    [Math.round(d * 0.7), Math.round(d * 0.7)],
    [Math.round(d * 0.7), -Math.round(d * 0.7)],
  ] as const;
  const response = new Float32Array(width * height);
  for (let y = d; y < height - d; y++) {
    for (let x = d; x < width - d; x++) {
      const i = y * width + x;
      let surround = -Infinity;
      for (const [ax, ay] of axes) {
        const o = ay * width + ax;
        const lesser = Math.min(smooth[i + o]!, smooth[i - o]!);
        if (lesser > surround) surround = lesser;
      }
      response[i] = smooth[i]! - surround;
    }
  }
  const candidates = localMaxima(response, width, height, 2 * scale, MAX_CANDIDATES);
  const size = Math.min(width, height);
  let best: MarkerPair | null = null;
  let bestScore = -Infinity;
  for (let i = 0; i < candidates.length; i++) {
    for (let j = i + 1; j < candidates.length; j++) {
      const a = candidates[i]!;
      const b = candidates[j]!;
      const spacing = Math.hypot(a.x - b.x, a.y - b.y) / size;
      if (spacing < MIN_SPACING || spacing > MAX_SPACING) continue;
      const score = Math.min(a.response, b.response);
      if (score > bestScore) {
        bestScore = score;
        best = a.x < b.x || (a.x === b.x && a.y < b.y) ? { a, b } : { a: b, b: a };
      }
    }
  }
  return best !== null && bestScore >= MIN_MARKER_RESPONSE ? best : null;
}

function smooth121({ width, height, data }: WorkingImage): Float32Array {
  const tmp = new Float32Array(data.length);
  const out = new Float32Array(data.length);
  for (let y = 0; y < height; y++) {
    const r = y * width;
    for (let x = 0; x < width; x++) tmp[r + x] = (data[r + Math.max(0, x - 1)]! + 2 * data[r + x]! + data[r + Math.min(width - 1, x + 1)]!) / 4;
  }
  for (let y = 0; y < height; y++) {
    const up = Math.max(0, y - 1) * width;
    const down = Math.min(height - 1, y + 1) * width;
    const r = y * width;
    for (let x = 0; x < width; x++) out[r + x] = (tmp[up + x]! + 2 * tmp[r + x]! + tmp[down + x]!) / 4;
  }
  return out;
}

/** The strongest local maxima (strictly largest within `radius`), best first. */
function localMaxima(values: Float32Array, width: number, height: number, radius: number, limit: number): MarkerPoint[] {
  const found: MarkerPoint[] = [];
  for (let y = radius; y < height - radius; y++) {
    for (let x = radius; x < width - radius; x++) {
      const v = values[y * width + x]!;
      if (v < MIN_MARKER_RESPONSE * 0.5) continue;
      let isMax = true;
      for (let dy = -radius; dy <= radius && isMax; dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          const w = values[(y + dy) * width + x + dx]!;
          if (w > v || (w === v && (dy < 0 || (dy === 0 && dx < 0)))) {
            isMax = false;
            break;
          }
        }
      }
      if (isMax) found.push(refine(values, width, x, y, v));
    }
  }
  found.sort((p, q) => q.response - p.response);
  return found.slice(0, limit);
}

/** Sub-pixel peak by a parabola through the neighbours on each axis. */
function refine(values: Float32Array, width: number, x: number, y: number, v: number): MarkerPoint {
  const offset = (l: number, r: number): number => {
    const denominator = l - 2 * v + r;
    return denominator < 0 ? Math.max(-0.5, Math.min(0.5, (0.5 * (l - r)) / denominator)) : 0;
  };
  const i = y * width + x;
  return { x: x + offset(values[i - 1]!, values[i + 1]!), y: y + offset(values[i - width]!, values[i + width]!), response: v };
}
