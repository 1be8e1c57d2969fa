import { ArteriaError } from '@arteria/protocol';
import type { FrameLayout } from '@arteria/sdk';
import { aboveBaseline, baselineFrameCount, detectInjection } from './detect.js';
import type { DarkeningCurves } from './signal.js';

/** The output, exactly as manifest.json's outputSchema describes it. */
export interface ContrastInjectionOutput {
  contrastDetected: boolean;
  injection: Injection | null;
  frames: number;
  frameTimeMs: number;
  /**
   * Time-density curve: contrast over the whole field per frame, as mean log attenuation
   * above baseline (0 without contrast), averaged into at most 64 points.
   */
  curve: number[];
}

export interface Injection {
  startFrame: number;
  peakFrame: number;
  endFrame: number;
  startMs: number;
  peakMs: number;
  endMs: number;
  /** Share of X-ray intensity absorbed by contrast in the most opacified 2% of the field, at its strongest. */
  peakOpacification: number;
  confidence: number;
}

export const MIN_FRAMES = 4;
export const MAX_CURVE_POINTS = 64;

/** Log attenuation to absorbed fraction: 0 stays 0, large values approach 1. */
const toOpacification = (attenuation: number): number => 1 - Math.exp(-attenuation);
const round = (value: number, digits: number): number => Number(value.toFixed(digits));

export function assertEnoughFrames(frames: FrameLayout): void {
  if (frames.frameCount < MIN_FRAMES) {
    throw new ArteriaError('ALGORITHM_FAILED', `contrast-injection needs at least ${MIN_FRAMES} frames, the run has ${frames.frameCount}`);
  }
}

export function summarize(frames: FrameLayout, measured: DarkeningCurves): ContrastInjectionOutput {
  const baselineFrames = baselineFrameCount(frames.frameCount);
  const curves = aboveBaseline(measured, baselineFrames);
  const found = detectInjection(curves);
  const ms = (frame: number): number => round(frame * frames.frameTimeMs, 1);
  return {
    contrastDetected: found !== null,
    injection:
      found === null
        ? null
        : {
            startFrame: found.startFrame,
            peakFrame: found.peakFrame,
            endFrame: found.endFrame,
            startMs: ms(found.startFrame),
            peakMs: ms(found.peakFrame),
            endMs: ms(found.endFrame),
            peakOpacification: round(Math.max(0, toOpacification(found.peak)), 4),
            confidence: round(found.confidence, 3),
          },
    frames: frames.frameCount,
    frameTimeMs: round(frames.frameTimeMs, 3),
    curve: downsample(curves.density, MAX_CURVE_POINTS).map((v) => round(v, 5)),
  };
}

/** Means over equal spans of frames, so a 2000-frame run still yields a small result. */
function downsample(values: Float64Array, points: number): number[] {
  if (values.length <= points) return Array.from(values);
  return Array.from({ length: points }, (_, i) => {
    const from = Math.floor((i * values.length) / points);
    const to = Math.floor(((i + 1) * values.length) / points);
    let sum = 0;
    for (let f = from; f < to; f++) sum += values[f]!;
    return sum / (to - from);
  });
}

