/** One balloon inflation: the frames (inclusive) where the balloon is inflated. */
export interface InflationEvent {
  type: 'balloon-inflation';
  startFrame: number;
  endFrame: number;
  startMs: number;
  endMs: number;
  confidence: number;
}

/** Frames that looked inflated but never clearly enough to be reported (a debug field of the output). */
export interface WeakCandidate {
  startFrame: number;
  endFrame: number;
  /** Highest smoothed probability of an inflated balloon over these frames (below EVENT_PEAK_THRESHOLD). */
  peakProbability: number;
}

/** A frame counts as inflated above this (smoothed) probability. */
export const INFLATED_THRESHOLD = 0.6;
/**
 * An event is reported only when its smoothed probability reaches this somewhere: the model
 * gives contrast filling the vessels (a bolus) and other devices middling probabilities over
 * many frames, and a real inflation almost always a clear peak. Chosen on the validation runs
 * of both training generators (train/py/profiles.py VALIDATION and train/synth-set.ts check;
 * MODEL_CARD.md has the grid), never on the held-out set, as were INFLATED_THRESHOLD and
 * MEDIAN_FRAMES.
 */
export const EVENT_PEAK_THRESHOLD = 0.95;
/**
 * Width of the running median over the per-frame probabilities (odd; 1: none). The model
 * averages each frame over its mirror images, and on the validation split no median did
 * better than none (3.0.0: F1 0.692; a 3-frame median 0.625, 7 frames 0.630).
 */
export const MEDIAN_FRAMES = 1;
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
export const MAX_GAP_FRAMES = 2;
/** Shorter runs of inflated frames are noise. */
export const MIN_EVENT_FRAMES = 3;

/** The post-processing's parameters: the shipped ones are the defaults; train/tune.ts compares others on the validation split. */
export interface EventRule {
  medianFrames: number;
  inflatedThreshold: number;
  eventPeakThreshold: number;
  maxGapFrames: number;
  minEventFrames: number;
}

export const EVENT_RULE: EventRule = {
  medianFrames: MEDIAN_FRAMES,
  inflatedThreshold: INFLATED_THRESHOLD,
  eventPeakThreshold: EVENT_PEAK_THRESHOLD,
  maxGapFrames: MAX_GAP_FRAMES,
  minEventFrames: MIN_EVENT_FRAMES,
};

/**
 * Per-frame probabilities to events: a MEDIAN_FRAMES running median (none when 1; a monotone
 * step passes unmoved, so onsets keep their frame), gaps of up to two frames are bridged,
 * runs shorter than three frames are dropped, and so are runs whose smoothed probability
 * never reaches EVENT_PEAK_THRESHOLD (hysteresis: an event needs a clear core, then extends
 * over the frames above INFLATED_THRESHOLD). Confidence is the mean smoothed probability over
 * the event.
 */
export function eventsFromProbabilities(probabilities: readonly number[], frameTimeMs: number): InflationEvent[] {
  return inflationCandidates(probabilities, frameTimeMs).events;
}

/** eventsFromProbabilities, with the runs of frames it did not report because they never reached EVENT_PEAK_THRESHOLD. */
export function inflationCandidates(probabilities: readonly number[], frameTimeMs: number, rule: EventRule = EVENT_RULE): { events: InflationEvent[]; weak: WeakCandidate[] } {
  const n = probabilities.length;
  const half = rule.medianFrames >> 1;
  const window: number[] = [];
  const smoothed = probabilities.map((_, f) => {
    window.length = 0;
    for (let g = f - half; g <= f + half; g++) window.push(probabilities[Math.min(n - 1, Math.max(0, g))]!);
    return window.sort((a, b) => a - b)[half]!;
  });
  const on = smoothed.map((p) => p >= rule.inflatedThreshold);
  for (let f = 0; f < n; f++) {
    if (on[f]) continue;
    let end = f;
    while (end < n && !on[end]) end++;
    if (f > 0 && end < n && end - f <= rule.maxGapFrames) on.fill(true, f, end);
    f = end;
  }
  const events: InflationEvent[] = [];
  const weak: WeakCandidate[] = [];
  for (let f = 0; f < n; f++) {
    if (!on[f]) continue;
    let end = f;
    while (end + 1 < n && on[end + 1]) end++;
    let sum = 0;
    let peak = 0;
    for (let g = f; g <= end; g++) {
      sum += smoothed[g]!;
      peak = Math.max(peak, smoothed[g]!);
    }
    if (end - f + 1 >= rule.minEventFrames && peak >= rule.eventPeakThreshold) {
      events.push({
        type: 'balloon-inflation',
        startFrame: f,
        endFrame: end,
        startMs: round(f * frameTimeMs),
        endMs: round(end * frameTimeMs),
        confidence: round(sum / (end - f + 1)),
      });
    } else if (end - f + 1 >= rule.minEventFrames) {
      weak.push({ startFrame: f, endFrame: end, peakProbability: round(peak) });
    }
    f = end;
  }
  return { events, weak };
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

/**
 * The events of a run whose first `probabilities.length` frames are known that no later
 * frame can change: the smoothed probability of frame f depends on the frames up to
 * f + medianFrames / 2, and an event ends for good once more than maxGapFrames frames after
 * it are below the threshold. Each is exactly an event of the whole run's
 * `inflationCandidates`, so it can be reported while the run is still acquired.
 */
export function settledEvents(probabilities: readonly number[], frameTimeMs: number, rule: EventRule = EVENT_RULE): InflationEvent[] {
  const lastFinal = probabilities.length - 1 - (rule.medianFrames >> 1);
  return inflationCandidates(probabilities, frameTimeMs, rule).events.filter((e) => e.endFrame + rule.maxGapFrames + 1 <= lastFinal);
}
