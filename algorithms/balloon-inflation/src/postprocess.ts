/** One balloon inflation: the frames (inclusive) where the balloon is inflated. */
export interface InflationEvent {
  type: 'balloon-inflation';
  startFrame: number;
  endFrame: number;
  startMs: number;
  endMs: number;
  confidence: number;
}

/** A frame counts as inflated above this (smoothed) probability. */
export const INFLATED_THRESHOLD = 0.5;
/** A frame counts as showing a balloon above this probability. */
export const VISIBLE_THRESHOLD = 0.5;
/** A run shows a balloon when at least this many frames do: a frame or two is noise. */
export const MIN_BALLOON_FRAMES = 3;

export type BalloonStatus = 'not-visible' | 'visible' | 'inflated';

/** What the run shows: an inflation, a balloon that stays deflated, or no balloon. */
export function balloonStatusOf(events: readonly InflationEvent[], balloonFrames: number): BalloonStatus {
  if (events.length > 0) return 'inflated';
  return balloonFrames >= MIN_BALLOON_FRAMES ? 'visible' : 'not-visible';
}
/** Gaps up to this many frames inside an inflation are bridged (a missed marker, a noisy frame). */
const MAX_GAP_FRAMES = 2;
/** Shorter runs of inflated frames are noise. */
const MIN_EVENT_FRAMES = 3;

/**
 * Per-frame probabilities to events: a 5-frame median removes flips of one or two frames
 * (a monotone step passes unmoved, so onsets keep their frame), gaps of up to two frames
 * are bridged, and runs shorter than three frames are dropped. Confidence is the mean
 * smoothed probability over the event.
 */
export function eventsFromProbabilities(probabilities: readonly number[], frameTimeMs: number): InflationEvent[] {
  const n = probabilities.length;
  const at = (f: number): number => probabilities[Math.min(n - 1, Math.max(0, f))]!;
  const smoothed = probabilities.map((_, f) => median5(at(f - 2), at(f - 1), at(f), at(f + 1), at(f + 2)));
  const on = smoothed.map((p) => p >= INFLATED_THRESHOLD);
  for (let f = 0; f < n; f++) {
    if (on[f]) continue;
    let end = f;
    while (end < n && !on[end]) end++;
    if (f > 0 && end < n && end - f <= MAX_GAP_FRAMES) on.fill(true, f, end);
    f = end;
  }
  const events: InflationEvent[] = [];
  for (let f = 0; f < n; f++) {
    if (!on[f]) continue;
    let end = f;
    while (end + 1 < n && on[end + 1]) end++;
    if (end - f + 1 >= MIN_EVENT_FRAMES) {
      let sum = 0;
      for (let g = f; g <= end; g++) sum += smoothed[g]!;
      events.push({
        type: 'balloon-inflation',
        startFrame: f,
        endFrame: end,
        startMs: round(f * frameTimeMs),
        endMs: round(end * frameTimeMs),
        confidence: round(sum / (end - f + 1)),
      });
    }
    f = end;
  }
  return events;
}

function median5(...values: number[]): number {
  return values.sort((a, b) => a - b)[2]!;
}

const round = (v: number): number => Math.round(v * 1000) / 1000;
