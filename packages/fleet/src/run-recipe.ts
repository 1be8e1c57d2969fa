import { synthesizeXaRun } from '@arteria/dicom';
import { synthesizeBalloonRun } from '@arteria/synth';

/** What to synthesize: plain XA runs (with or without a contrast injection) or angioplasty runs with a balloon. */
export interface RunRecipe {
  kind: 'contrast' | 'balloon';
  seed: number;
  rows: number;
  columns: number;
  frames: number;
  frameRateHz: number;
  bitsStored: 8 | 10 | 12 | 14 | 16;
  /** Whether the run holds the event its algorithm looks for (an injection, an inflation). */
  withEvent: boolean;
}

/** Renders one run to DICOM Part 10 bytes. Pure CPU work: the fleet runs it off the main thread. */
export function renderRun(recipe: RunRecipe): Uint8Array {
  const { kind, seed, rows, columns, frames, frameRateHz, bitsStored, withEvent } = recipe;
  if (kind === 'balloon') {
    return synthesizeBalloonRun({ seed, rows, columns, frames, frameRateHz, bitsStored, ...(withEvent ? {} : { inflation: null }) }).bytes;
  }
  const contrast = withEvent ? { startFrame: Math.floor(frames * 0.2), peakFrame: Math.floor(frames * 0.5), endFrame: Math.floor(frames * 0.85) } : null;
  return synthesizeXaRun({ seed, rows, columns, frames, frameRateHz, bitsStored, contrast }).bytes;
}
