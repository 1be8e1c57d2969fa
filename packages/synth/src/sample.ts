import { mulberry32, uniform } from '@arteria/dicom';
import { normaliseBalloonRun, type BalloonRunOptions } from './options.js';

/** What a sampled run shows; balloon-free kinds are the confounders a detector must ignore. */
export type RunKind = 'inflation' | 'inflation-with-contrast' | 'deflated-balloon' | 'contrast-no-balloon' | 'contrast-deflated-balloon' | 'table-pan' | 'no-device';

export const RUN_KINDS: readonly RunKind[] = ['inflation', 'inflation-with-contrast', 'deflated-balloon', 'contrast-no-balloon', 'contrast-deflated-balloon', 'table-pan', 'no-device'];

/**
 * Parameter ranges of a data set. Training and evaluation use different ranges (evaluation
 * reaches lower dose, weaker contrast, stronger motion and longer runs) as well as different seeds.
 */
export interface SampleProfile {
  frames: [number, number];
  dose: [number, number];
  contrastStrength: [number, number];
  motion: [number, number];
  frameRatesHz: readonly number[];
  bitsStored: readonly number[];
  /** Share of runs with a balloon inflation. */
  inflationShare: number;
}

export const TRAIN_PROFILE: Readonly<SampleProfile> = Object.freeze<SampleProfile>({
  frames: [24, 64],
  dose: [0.3, 3],
  contrastStrength: [0.6, 1.4],
  motion: [0.3, 1.5],
  frameRatesHz: [7.5, 10, 12.5, 15, 25, 30],
  bitsStored: [8, 10, 12, 14, 16],
  inflationShare: 0.5,
});

export const EVAL_PROFILE: Readonly<SampleProfile> = Object.freeze<SampleProfile>({
  frames: [30, 90],
  dose: [0.25, 4],
  contrastStrength: [0.55, 1.6],
  motion: [0.2, 1.8],
  frameRatesHz: [7.5, 15, 30],
  bitsStored: [8, 12, 16],
  inflationShare: 0.5,
});

/** Beyond both: very low dose, faint contrast, strong motion, 8-bit. For finding where detection breaks. */
export const STRESS_PROFILE: Readonly<SampleProfile> = Object.freeze<SampleProfile>({
  frames: [30, 90],
  dose: [0.06, 0.25],
  contrastStrength: [0.3, 0.6],
  motion: [1.8, 3.5],
  frameRatesHz: [7.5, 15, 30],
  bitsStored: [8],
  inflationShare: 0.5,
});

export interface SampleOptions {
  seed: number;
  rows: number;
  columns: number;
  profile?: SampleProfile;
  /** Forces the kind of run; otherwise drawn from the seed. */
  kind?: RunKind;
}

/** Draws the options of one synthetic run from a seed: what the training, evaluation and fleet runs use. */
export function sampleBalloonRun({ seed, rows, columns, profile = TRAIN_PROFILE, kind }: SampleOptions): { kind: RunKind; options: BalloonRunOptions } {
  const rand = uniform(mulberry32((seed ^ 0x5bd1e995) >>> 0));
  const between = ([lo, hi]: [number, number]): number => lo + rand() * (hi - lo);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const choose = <T>(values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;
  const frames = Math.round(between(profile.frames));
  const chosen: RunKind = kind ?? (rand() < profile.inflationShare ? (rand() < 0.75 ? 'inflation' : 'inflation-with-contrast') : choose(RUN_KINDS.slice(2)));

  const inflating = int(2, 8);
  const inflated = int(5, Math.max(6, Math.min(40, frames - inflating * 2 - 8)));
  const deflating = int(2, 8);
  const span = inflating + inflated + deflating;
  const inflateStart = int(2, Math.max(2, frames - span - 2));
  const inflation = {
    inflateStart,
    inflatedStart: inflateStart + inflating,
    deflateStart: inflateStart + inflating + inflated,
    deflatedEnd: Math.min(frames - 1, inflateStart + span),
  };
  const injectionStart = int(1, Math.max(1, Math.floor(frames * 0.4)));
  const injectionPeak = Math.min(frames - 1, injectionStart + int(2, 10));
  const contrast = { startFrame: injectionStart, peakFrame: injectionPeak, endFrame: Math.min(frames - 1, injectionPeak + int(4, 30)) };
  const panStart = int(0, Math.floor(frames * 0.5));
  const angle = rand() * 2 * Math.PI;
  const reach = 0.08 + rand() * 0.2;
  const tablePan = { startFrame: panStart, endFrame: Math.min(frames - 1, panStart + int(4, 20)), dx: reach * Math.cos(angle), dy: reach * Math.sin(angle) };

  const withBalloon = chosen === 'inflation' || chosen === 'inflation-with-contrast' || chosen === 'deflated-balloon' || chosen === 'contrast-deflated-balloon' || (chosen === 'table-pan' && rand() < 0.5);
  const withInflation = chosen === 'inflation' || chosen === 'inflation-with-contrast';
  const withContrast = chosen === 'inflation-with-contrast' || chosen === 'contrast-no-balloon' || chosen === 'contrast-deflated-balloon';
  const options = normaliseBalloonRun({
    seed,
    rows,
    columns,
    frames,
    frameRateHz: choose(profile.frameRatesHz),
    bitsStored: choose(profile.bitsStored),
    photometric: rand() < 0.25 ? 'MONOCHROME1' : 'MONOCHROME2',
    device: withBalloon ? 'balloon' : 'none',
    inflation: withInflation ? inflation : null,
    contrast: withContrast ? contrast : null,
    tablePan: chosen === 'table-pan' || (withInflation && rand() < 0.1) ? tablePan : null,
    dose: between(profile.dose),
    contrastStrength: between(profile.contrastStrength),
    motion: between(profile.motion),
  });
  return { kind: chosen, options };
}
