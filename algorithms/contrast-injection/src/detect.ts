/** Where a contrast injection lies on the darkening curve, in frames. */
export interface Detection {
  startFrame: number;
  peakFrame: number;
  endFrame: number;
  /** Darkening at the peak above baseline, log-attenuation units. */
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
const MIN_FRAMES = 2;

/** How many leading frames serve as the contrast-free baseline. */
export function baselineFrameCount(frames: number): number {
  return Math.min(8, Math.max(2, Math.floor(frames * 0.15)));
}

/** Curve minus the median of its baseline frames. */
export function aboveBaseline(curve: Float64Array, baselineFrames: number): Float64Array {
  const base = median(Array.from(curve.subarray(0, baselineFrames)));
  return curve.map((v) => v - base);
}

/**
 * Hysteresis on the baseline-corrected curve: the frames above the low threshold around
 * the largest excursion above the high threshold. Noise is estimated from frame-to-frame
 * changes; their lower quartile ignores the steep changes of the injection itself.
 */
export function detectInjection(opacity: Float64Array): Detection | null {
  const sigma = noiseSigma(opacity);
  const high = Math.max(HIGH_SIGMAS * sigma, HIGH_MIN);
  const low = Math.max(LOW_SIGMAS * sigma, LOW_MIN);

  let best: { start: number; end: number; area: number } | null = null;
  let f = 0;
  while (f < opacity.length) {
    if (opacity[f]! <= low) {
      f++;
      continue;
    }
    const start = f;
    let end = f;
    let area = 0;
    let crossesHigh = false;
    // A single frame dipping below the low threshold does not end an injection.
    while (f < opacity.length && (opacity[f]! > low || (opacity[f + 1] ?? 0) > low)) {
      if (opacity[f]! > low) end = f;
      area += Math.max(0, opacity[f]!);
      crossesHigh ||= opacity[f]! > high;
      f++;
    }
    if (crossesHigh && end - start + 1 >= MIN_FRAMES && (best === null || area > best.area)) best = { start, end, area };
  }
  if (best === null) return null;

  let peakFrame = best.start;
  let peakValue = -Infinity;
  for (let g = best.start; g <= best.end; g++) {
    // Light [1 2 1] smoothing keeps one noisy frame from moving the peak.
    const smoothed = ((opacity[g - 1] ?? opacity[g]!) + 2 * opacity[g]! + (opacity[g + 1] ?? opacity[g]!)) / 4;
    if (smoothed > peakValue) {
      peakValue = smoothed;
      peakFrame = g;
    }
  }
  const peak = opacity[peakFrame]!;
  const startFrame = Math.min(best.start, extrapolatedEdge(opacity, best.start, peakFrame, peak));
  const endFrame = Math.max(best.end, extrapolatedEdge(opacity, best.end, peakFrame, peak));
  const margin = peak / high;
  const duration = Math.min(1, (best.end - best.start + 1) / 4);
  const confidence = Math.max(0, Math.min(1, (1 - 1 / (margin * margin)) * duration));
  return { startFrame, peakFrame, endFrame, peak, confidence };
}

/**
 * Faint first (or last) frames of an injection hide in the noise. A line through the
 * edge, from where it clears the low threshold to half the peak, is followed back to
 * zero; the first (last) frame beyond that crossing is where contrast begins (ends).
 * Returns `from` when the edge is too short to fit.
 */
function extrapolatedEdge(opacity: Float64Array, from: number, peakFrame: number, peak: number): number {
  const direction = from <= peakFrame ? 1 : -1;
  const xs: number[] = [];
  for (let f = from; direction * (f - peakFrame) <= 0; f += direction) {
    xs.push(f);
    if (opacity[f]! >= peak / 2) break;
  }
  if (xs.length < 2) return from;
  const n = xs.length;
  const meanX = xs.reduce((a, x) => a + x, 0) / n;
  const meanY = xs.reduce((a, x) => a + opacity[x]!, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const x of xs) {
    sxy += (x - meanX) * (opacity[x]! - meanY);
    sxx += (x - meanX) ** 2;
  }
  const slope = sxy / sxx;
  if (!(direction * slope > 0)) return from;
  const zero = meanX - meanY / slope;
  return direction === 1 ? Math.max(0, Math.floor(zero) + 1) : Math.min(opacity.length - 1, Math.ceil(zero) - 1);
}

function noiseSigma(curve: Float64Array): number {
  if (curve.length < 3) return SIGMA_MIN;
  const steps = Array.from(curve.subarray(1), (v, i) => Math.abs(v - curve[i]!)).sort((a, b) => a - b);
  // For Gaussian noise of deviation s, |difference| has lower quartile 0.3186 * s * sqrt(2).
  const q1 = steps[Math.floor((steps.length - 1) / 4)]!;
  return Math.max(SIGMA_MIN, q1 / (0.3186 * Math.SQRT2));
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
