import type { DarkeningCurves } from './signal.js';

/** Where a contrast injection lies on the darkening curves, in frames. */
export interface Detection {
  startFrame: number;
  peakFrame: number;
  endFrame: number;
  /** Strongest darkening of the most opacified part of the field, log-attenuation units. */
  peak: number;
  confidence: number;
}

/** A rise must clear this many noise deviations to count, and this absolute darkening. */
const HIGH_SIGMAS = 8;
const HIGH_MIN = 0.05;
/** The injection spans the frames above this many deviations around the rise. */
const LOW_SIGMAS = 3;
const LOW_MIN = 0.012;
const SIGMA_MIN = 0.002;
/** Injections last longer than a frame; a single spike is noise or a glitch. */
const MIN_INJECTION_FRAMES = 2;

/** How many leading frames serve as the contrast-free baseline. */
export function baselineFrameCount(frames: number): number {
  return Math.min(8, Math.max(2, Math.floor(frames * 0.15)));
}

/** Both curves minus the median of their baseline frames. */
export function aboveBaseline(curves: DarkeningCurves, baselineFrames: number): DarkeningCurves {
  const correct = (curve: Float64Array): Float64Array => {
    const base = median(Array.from(curve.subarray(0, baselineFrames)));
    return curve.map((v) => v - base);
  };
  return { tail: correct(curves.tail), density: correct(curves.density), tailNoise: curves.tailNoise };
}

/**
 * Hysteresis on the tail curve: the frames above the low threshold around the largest
 * excursion above the high threshold. The peak is where the density curve (contrast over
 * the whole field) is highest.
 */
export function detectInjection({ tail, density, tailNoise }: DarkeningCurves): Detection | null {
  const sigma = noiseSigma(tail, tailNoise);
  const high = Math.max(HIGH_SIGMAS * sigma, HIGH_MIN);
  const low = Math.max(LOW_SIGMAS * sigma, LOW_MIN);
  const segment = largestExcursion(tail, low, high);
  if (segment === null) return null;

  const tailPeak = argmax(tail, segment.start, segment.end);
  const peak = tail[tailPeak]!;
  // Extend over faint frames the edge line points to, but never across a frame at baseline.
  let startFrame = segment.start;
  const extrapolatedStart = extrapolatedEdge(tail, segment.start, tailPeak, peak);
  while (startFrame > extrapolatedStart && tail[startFrame - 1]! > sigma) startFrame--;
  let endFrame = segment.end;
  const extrapolatedEnd = extrapolatedEdge(tail, segment.end, tailPeak, peak);
  while (endFrame < extrapolatedEnd && tail[endFrame + 1]! > sigma) endFrame++;
  const peakFrame = argmax(density, startFrame, endFrame);
  const margin = peak / high;
  const duration = Math.min(1, (segment.end - segment.start + 1) / 4);
  const confidence = Math.max(0, Math.min(1, (1 - 1 / (margin * margin)) * duration));
  return { startFrame, peakFrame, endFrame, peak, confidence };
}

/** The contiguous run above `low` with the largest area that also clears `high`. */
function largestExcursion(curve: Float64Array, low: number, high: number): { start: number; end: number } | null {
  let best: { start: number; end: number; area: number } | null = null;
  let f = 0;
  while (f < curve.length) {
    if (curve[f]! <= low) {
      f++;
      continue;
    }
    const start = f;
    let end = f;
    let area = 0;
    let crossesHigh = false;
    // A single frame dipping below the low threshold does not end an injection.
    while (f < curve.length && (curve[f]! > low || (curve[f + 1] ?? 0) > low)) {
      if (curve[f]! > low) end = f;
      area += Math.max(0, curve[f]!);
      crossesHigh ||= curve[f]! > high;
      f++;
    }
    if (crossesHigh && end - start + 1 >= MIN_INJECTION_FRAMES && (best === null || area > best.area)) best = { start, end, area };
  }
  return best;
}

/** Frame of the highest [1 2 1]-smoothed value in [from, to]: one noisy frame does not move it. */
function argmax(curve: Float64Array, from: number, to: number): number {
  let best = from;
  let bestValue = -Infinity;
  for (let f = from; f <= to; f++) {
    const value = (curve[f - 1] ?? curve[f]!) + 2 * curve[f]! + (curve[f + 1] ?? curve[f]!);
    if (value > bestValue) {
      bestValue = value;
      best = f;
    }
  }
  return best;
}

/**
 * Faint first (or last) frames of an injection hide in the noise. Early on, both the
 * opacified area and its depth grow with time, so the tail curve grows about
 * quadratically: its square root is about linear. A line through the square root of the
 * edge, from where it clears the low threshold to half the peak, is followed back to
 * zero; the first (last) frame beyond that crossing is where contrast begins (ends).
 * Returns `from` when the edge is too short to fit.
 */
function extrapolatedEdge(curve: Float64Array, from: number, peakFrame: number, peak: number): number {
  const direction = from <= peakFrame ? 1 : -1;
  const xs: number[] = [];
  for (let f = from; direction * (f - peakFrame) <= 0; f += direction) {
    xs.push(f);
    if (curve[f]! >= peak / 2) break;
  }
  if (xs.length < 2) return from;
  const ys = xs.map((x) => Math.sqrt(Math.max(0, curve[x]!)));
  const n = xs.length;
  const meanX = xs.reduce((a, x) => a + x, 0) / n;
  const meanY = ys.reduce((a, y) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - meanX) * (ys[i]! - meanY);
    sxx += (x - meanX) ** 2;
  });
  const slope = sxy / sxx;
  if (!(direction * slope > 0)) return from;
  const zero = meanX - meanY / slope;
  return direction === 1 ? Math.max(0, Math.floor(zero) + 1) : Math.min(curve.length - 1, Math.ceil(zero) - 1);
}

/**
 * Noise of the tail curve. Frame-to-frame changes also see motion and reference
 * mismatch, but a long injection inflates them (their lower quartile resists only so
 * much); the within-frame estimate does not grow with the injection, so it bounds them.
 */
function noiseSigma(curve: Float64Array, withinFrame: number): number {
  let temporal = withinFrame;
  if (curve.length >= 3) {
    const steps = Array.from(curve.subarray(1), (v, i) => Math.abs(v - curve[i]!)).sort((a, b) => a - b);
    // For normal noise of deviation s, |difference| has lower quartile 0.3186 * s * sqrt(2).
    temporal = steps[Math.floor((steps.length - 1) / 4)]! / (0.3186 * Math.SQRT2);
  }
  return Math.max(SIGMA_MIN, withinFrame, Math.min(temporal, 2 * withinFrame));
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
