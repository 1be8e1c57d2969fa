import type { ContrastInjection, InflationPhases, TablePan } from './options.js';

export type BalloonPhase = 'none' | 'deflated' | 'inflating' | 'inflated' | 'deflating';

/** Balloon fill (0 deflated .. 1 fully inflated) and its phase at frame f. */
export function balloonState(device: 'balloon' | 'none', inflation: InflationPhases | null, f: number): { fill: number; phase: BalloonPhase } {
  if (device === 'none') return { fill: 0, phase: 'none' };
  if (inflation === null || f < inflation.inflateStart || f >= inflation.deflatedEnd) return { fill: 0, phase: 'deflated' };
  const { inflateStart, inflatedStart, deflateStart, deflatedEnd } = inflation;
  if (f < inflatedStart) return { fill: (f - inflateStart + 1) / (inflatedStart - inflateStart + 1), phase: 'inflating' };
  if (f < deflateStart) return { fill: 1, phase: 'inflated' };
  return { fill: (deflatedEnd - f) / (deflatedEnd - deflateStart + 1), phase: 'deflating' };
}

/** Vessel contrast 0..1: linear rise to the peak, linear wash-out to the end. */
export function contrastLevel(contrast: ContrastInjection | null, f: number): number {
  if (contrast === null || f < contrast.startFrame || f > contrast.endFrame) return 0;
  if (f <= contrast.peakFrame) return (f - contrast.startFrame + 1) / (contrast.peakFrame - contrast.startFrame + 1);
  return (contrast.endFrame - f + 1) / (contrast.endFrame - contrast.peakFrame + 1);
}

/** Table offset in pixels at frame f: a smooth move between the pan's frames. */
export function panOffset(pan: TablePan | null, f: number, size: number): { x: number; y: number } {
  if (pan === null || f <= pan.startFrame) return { x: 0, y: 0 };
  const t = f >= pan.endFrame ? 1 : (f - pan.startFrame) / Math.max(1, pan.endFrame - pan.startFrame);
  const s = t * t * (3 - 2 * t);
  return { x: pan.dx * size * s, y: pan.dy * size * s };
}

/** Frame intervals (inclusive) where the balloon is at least half inflated: the events to detect. */
export function inflationEvents(fills: readonly number[]): { startFrame: number; endFrame: number }[] {
  const events: { startFrame: number; endFrame: number }[] = [];
  let start = -1;
  fills.forEach((fill, f) => {
    if (fill >= 0.5 && start < 0) start = f;
    if (fill < 0.5 && start >= 0) {
      events.push({ startFrame: start, endFrame: f - 1 });
      start = -1;
    }
  });
  if (start >= 0) events.push({ startFrame: start, endFrame: fills.length - 1 });
  return events;
}
