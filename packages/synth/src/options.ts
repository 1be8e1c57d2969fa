import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

const frame = z.number().int().min(0);

/** Frames (0-based) of one balloon inflation: starts filling, fully inflated, starts emptying, empty again. */
export const InflationPhases = z.strictObject({ inflateStart: frame, inflatedStart: frame, deflateStart: frame, deflatedEnd: frame });
export type InflationPhases = z.infer<typeof InflationPhases>;

/** Frames with iodinated contrast in the vessels: rises from startFrame, full at peakFrame, gone after endFrame. */
export const ContrastInjection = z.strictObject({ startFrame: frame, peakFrame: frame, endFrame: frame });
export type ContrastInjection = z.infer<typeof ContrastInjection>;

/** The table moves the whole field by (dx, dy), in fractions of the frame size, between two frames. */
export const TablePan = z.strictObject({ startFrame: frame, endFrame: frame, dx: z.number().min(-1).max(1), dy: z.number().min(-1).max(1) });
export type TablePan = z.infer<typeof TablePan>;

export const BalloonRunOptions = z.strictObject({
  seed: z.number().int().refine(Number.isSafeInteger, 'must be a safe integer'),
  rows: z.number().int().min(32).max(4096),
  columns: z.number().int().min(32).max(4096),
  frames: z.number().int().min(1).max(5000),
  frameRateHz: z.number().min(0.5).max(60),
  bitsStored: z.number().int().min(8).max(16),
  photometric: z.enum(['MONOCHROME1', 'MONOCHROME2']),
  /** 'balloon': a balloon catheter with two radio-opaque markers is in the vessel; 'none': no balloon device. */
  device: z.enum(['balloon', 'none']),
  /** null: the balloon (if any) stays deflated for the whole run. */
  inflation: InflationPhases.nullable(),
  contrast: ContrastInjection.nullable(),
  tablePan: TablePan.nullable(),
  /** Relative X-ray dose: quantum noise scales with 1/sqrt(dose). */
  dose: z.number().min(0.05).max(20),
  /** Relative iodine concentration of vessel and balloon contrast. */
  contrastStrength: z.number().min(0.2).max(3),
  /** Scales cardiac and respiratory motion; 0 is a still field. */
  motion: z.number().min(0).max(4),
});
export type BalloonRunOptions = z.infer<typeof BalloonRunOptions>;
export type BalloonRunInput = Partial<BalloonRunOptions>;

export const DEFAULT_BALLOON_RUN: Readonly<BalloonRunOptions> = Object.freeze({
  seed: 1,
  rows: 512,
  columns: 512,
  frames: 40,
  frameRateHz: 15,
  bitsStored: 12,
  photometric: 'MONOCHROME2',
  device: 'balloon',
  inflation: { inflateStart: 10, inflatedStart: 14, deflateStart: 26, deflatedEnd: 30 },
  contrast: null,
  tablePan: null,
  dose: 1,
  contrastStrength: 1,
  motion: 1,
});

/** Defaults filled in (without phases, a balloon inflates over 25%..75% of the run), validated, and checked for phases that fit the run. */
export function normaliseBalloonRun(input: BalloonRunInput): BalloonRunOptions {
  const frames = input.frames ?? DEFAULT_BALLOON_RUN.frames;
  // Without explicit phases, the balloon inflates over the middle of the run, whatever its length.
  const inflation =
    input.inflation !== undefined
      ? input.inflation
      : input.device === 'none' || frames < 8
        ? null
        : { inflateStart: Math.round(frames * 0.25), inflatedStart: Math.round(frames * 0.35), deflateStart: Math.round(frames * 0.65), deflatedEnd: Math.round(frames * 0.75) };
  const parsed = BalloonRunOptions.safeParse({ ...DEFAULT_BALLOON_RUN, ...input, inflation });
  if (!parsed.success) throw new ArteriaError('CONFIG_INVALID', `invalid balloon run options: ${z.prettifyError(parsed.error)}`);
  const o = parsed.data;
  const last = o.frames - 1;
  const ordered = (values: number[]): boolean => values.every((v, i) => v <= last && (i === 0 || v >= values[i - 1]!));
  if (o.device === 'none' && o.inflation !== null) throw new ArteriaError('CONFIG_INVALID', 'a run without a balloon device cannot have an inflation');
  const i = o.inflation;
  if (i !== null && !(ordered([i.inflateStart, i.inflatedStart, i.deflateStart, i.deflatedEnd]) && i.inflatedStart > i.inflateStart && i.deflatedEnd > i.deflateStart)) {
    throw new ArteriaError('CONFIG_INVALID', `inflation phases must satisfy inflateStart < inflatedStart <= deflateStart < deflatedEnd < ${o.frames}: ${JSON.stringify(i)}`);
  }
  const c = o.contrast;
  if (c !== null && !ordered([c.startFrame, c.peakFrame, c.endFrame])) {
    throw new ArteriaError('CONFIG_INVALID', `contrast phases must satisfy startFrame <= peakFrame <= endFrame < ${o.frames}: ${JSON.stringify(c)}`);
  }
  const p = o.tablePan;
  if (p !== null && !ordered([p.startFrame, p.endFrame])) {
    throw new ArteriaError('CONFIG_INVALID', `table pan must satisfy startFrame <= endFrame < ${o.frames}: ${JSON.stringify(p)}`);
  }
  return o;
}
