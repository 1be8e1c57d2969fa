import { ArteriaError } from '@arteria/protocol';
import { buildAnatomy } from './anatomy.js';
import { gaussianTable, mulberry32, uniform } from './prng.js';
import { newUid } from './uid.js';
import { SYNTHETIC_DEIDENTIFICATION, writeSyntheticXaRun, type PatientFields } from './write.js';

/** Frames (0-based, inclusive) where contrast is present; opacification peaks at peakFrame. */
export interface ContrastPhases {
  startFrame: number;
  peakFrame: number;
  endFrame: number;
}

export interface SynthesizeOptions {
  /** Any safe integer; default 1. */
  seed?: number;
  rows?: number;
  columns?: number;
  frames?: number;
  frameRateHz?: number;
  /** 8 gives BitsAllocated 8; 10, 12, 14 and 16 give BitsAllocated 16. Default 12. */
  bitsStored?: 8 | 10 | 12 | 14 | 16;
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  /** null: no injection. Default: an injection over 20%..80% of the run, peaking at 50%. */
  contrast?: ContrastPhases | null;
  patient?: PatientFields;
  /**
   * Declare the run de-identified (Patient Identity Removed YES, SYNTHETIC_DEIDENTIFICATION):
   * its patient fields are made up. Default true; false gives a run the platform treats as
   * identified (DEIDENTIFICATION_MISSING unless its tenant allows identified inputs).
   */
  declareDeidentified?: boolean;
}

/** What was put into a synthetic run, for tests to compare an algorithm's answer with. */
export interface RunTruth {
  contrast: ContrastPhases | null;
  /** Per frame: mean contrast concentration over the vessel tree, 0 (none) to 1 (fully opacified, at the peak). */
  opacification: number[];
  frames: number;
  rows: number;
  columns: number;
  frameRateHz: number;
  frameTimeMs: number;
  bitsStored: number;
  bitsAllocated: 8 | 16;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

/** Attenuation (log units) at the centre of the widest vessel, at peak contrast. */
const PEAK_ATTENUATION = 0.65;
/** Vessels without contrast are barely visible against soft tissue. */
const NATIVE_VESSEL_ATTENUATION = 0.03;
const CATHETER_ATTENUATION = 0.45;
/** Quantum noise variance per unit of relative intensity (about 1.5% at mid-grey). */
const NOISE_VARIANCE_GAIN = 0.00045;
const NOISE_TABLE_BITS = 12;

/**
 * A seeded, deterministic synthetic XA run: background, vessels, catheter, cardiac motion,
 * exposure flicker and quantum noise. With contrast, a bolus fills the vessels from the
 * catheter tip from startFrame, the whole tree is opacified at peakFrame, and it washes
 * out until endFrame (the last frame with contrast). Same options give the same bytes.
 */
export function synthesizeXaRun(options: SynthesizeOptions = {}): { bytes: Buffer; truth: RunTruth } {
  const o = normalise(options);
  const next = mulberry32(seedState(o.seed));
  const rand = uniform(next);
  const anatomy = buildAnatomy(o.rows, o.columns, rand);
  const noise = gaussianTable(next, 1 << NOISE_TABLE_BITS);
  const phases = Array.from({ length: o.frames }, (_, f) => contrastPhase(o.contrast, f));
  const opacification = phases.map((phase) => meanConcentration(anatomy, phase));

  const bitsAllocated = o.bitsStored === 8 ? 8 : 16;
  const maxValue = 2 ** o.bitsStored - 1;
  const plane = o.rows * o.columns;
  // Rendered as 16-bit whatever the depth, so the hot loop sees one array type.
  const samples = new Uint16Array(plane * o.frames);
  const invert = o.photometric === 'MONOCHROME1';
  const frameTimeMs = 1000 / o.frameRateHz;
  const heartPeriodMs = 700 + rand() * 400;
  const heartPhase = rand() * 2 * Math.PI;
  const motionPx = Math.min(o.rows, o.columns) * 0.012;
  // Noise standard deviation by intensity, on a 1/1024 grid (the gain can push v a little above 1).
  const noiseSd = Float32Array.from({ length: 1100 }, (_, i) => Math.sqrt((i / 1024) * NOISE_VARIANCE_GAIN));
  const mask = (1 << NOISE_TABLE_BITS) - 1;
  const { background, vessels, arrival, catheter } = anatomy;

  for (let f = 0; f < o.frames; f++) {
    const beat = (2 * Math.PI * f * frameTimeMs) / heartPeriodMs + heartPhase;
    const dx = Math.round(motionPx * Math.sin(beat));
    const dy = Math.round(motionPx * 0.6 * Math.sin(beat + 0.8));
    const gain = 1 + 0.004 * (noise[next() & mask] ?? 0); // exposure control flicker
    const phase = phases[f] ?? null;
    const out = f * plane;
    // Per-pixel noise draws use an inline xorshift, seeded per frame from the main stream.
    let state = next() | 1;
    for (let y = 0; y < o.rows; y++) {
      const sy = y - dy < 0 ? 0 : y - dy >= o.rows ? o.rows - 1 : y - dy;
      const row = y * o.columns;
      const sourceRow = sy * o.columns;
      for (let x = 0; x < o.columns; x++) {
        const sx = x - dx < 0 ? 0 : x - dx >= o.columns ? o.columns - 1 : x - dx;
        const s = sourceRow + sx;
        let v = background[row + x]! * gain;
        const vessel = vessels[s]!;
        let structure = catheter[s]! * CATHETER_ATTENUATION;
        if (vessel > 0) {
          const c = phase === null ? 0 : concentration(phase, arrival[s]!);
          structure += vessel * (NATIVE_VESSEL_ATTENUATION + PEAK_ATTENUATION * c);
        }
        if (structure > 0) v *= Math.exp(-structure);
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        v += noiseSd[(v * 1024 + 0.5) | 0]! * noise[state & mask]!;
        const q = v <= 0 ? 0 : v >= 1 ? maxValue : (v * maxValue + 0.5) | 0;
        samples[out + row + x] = invert ? maxValue - q : q;
      }
    }
  }
  const pixels = bitsAllocated === 8 ? Uint8Array.from(samples) : samples;

  const uidSeed = JSON.stringify(o);
  const truth: RunTruth = {
    contrast: o.contrast,
    opacification,
    frames: o.frames,
    rows: o.rows,
    columns: o.columns,
    frameRateHz: o.frameRateHz,
    frameTimeMs,
    bitsStored: o.bitsStored,
    bitsAllocated,
    photometric: o.photometric,
    studyInstanceUid: newUid(`study:${uidSeed}`),
    seriesInstanceUid: newUid(`series:${uidSeed}`),
    sopInstanceUid: newUid(`instance:${uidSeed}`),
  };
  const bytes = writeSyntheticXaRun(o, {
    pixels,
    frameTimeMs,
    patient: o.patient,
    ...(options.declareDeidentified === false ? {} : { deidentificationMethod: SYNTHETIC_DEIDENTIFICATION }),
    studyInstanceUid: truth.studyInstanceUid,
    seriesInstanceUid: truth.seriesInstanceUid,
    sopInstanceUid: truth.sopInstanceUid,
  });
  return { bytes, truth };
}

/** How far contrast has filled the tree (front, in arrival units) and at what concentration. */
interface Phase {
  front: number;
  level: number;
}

/** Pixels within this arrival distance behind the front are still filling. */
const FRONT_WIDTH = 0.25;

/**
 * The bolus front advances from the ostium and has filled the whole tree at peakFrame;
 * then the concentration falls linearly. Contrast shows on every frame of [start, end].
 */
function contrastPhase(c: ContrastPhases | null, f: number): Phase | null {
  if (c === null || f < c.startFrame || f > c.endFrame) return null;
  if (f <= c.peakFrame) return { front: ((1 + FRONT_WIDTH) * (f - c.startFrame + 1)) / (c.peakFrame - c.startFrame + 1), level: 1 };
  return { front: Infinity, level: (c.endFrame - f + 1) / (c.endFrame - c.peakFrame + 1) };
}

function concentration(phase: Phase, arrival: number): number {
  const fill = (phase.front - arrival) / FRONT_WIDTH;
  return phase.level * (fill >= 1 ? 1 : fill <= 0 ? 0 : fill);
}

/** Thickness-weighted mean concentration over the tree: 0 none, 1 fully opacified. */
function meanConcentration({ vessels, arrival }: { vessels: Float32Array; arrival: Float32Array }, phase: Phase | null): number {
  if (phase === null) return 0;
  let weighted = 0;
  let total = 0;
  for (let i = 0; i < vessels.length; i++) {
    const v = vessels[i]!;
    if (v === 0) continue;
    weighted += v * concentration(phase, arrival[i]!);
    total += v;
  }
  return total === 0 ? 0 : weighted / total;
}

type Normalised = Required<Omit<SynthesizeOptions, 'contrast' | 'declareDeidentified'>> & { contrast: ContrastPhases | null };

function normalise(options: SynthesizeOptions): Normalised {
  const frames = options.frames ?? 30;
  const seed = options.seed ?? 1;
  const o: Normalised = {
    seed,
    rows: options.rows ?? 128,
    columns: options.columns ?? 128,
    frames,
    frameRateHz: options.frameRateHz ?? 15,
    bitsStored: options.bitsStored ?? 12,
    photometric: options.photometric ?? 'MONOCHROME2',
    contrast:
      options.contrast !== undefined
        ? options.contrast
        : frames >= 4
          ? { startFrame: Math.round(frames * 0.2), peakFrame: Math.round(frames * 0.5), endFrame: Math.round(frames * 0.8) }
          : null,
    patient: { name: 'Synthetic^Run', id: `SYN-${seed}`, birthDate: '19700101', sex: 'O', ...options.patient },
  };
  const int = (n: number, min: number, max: number): boolean => Number.isInteger(n) && n >= min && n <= max;
  check(Number.isSafeInteger(o.seed), `seed must be a safe integer, got ${o.seed}`);
  check(int(o.rows, 8, 4096) && int(o.columns, 8, 4096), `rows and columns must be integers in 8..4096, got ${o.rows}x${o.columns}`);
  check(int(o.frames, 1, 10_000), `frames must be an integer in 1..10000, got ${o.frames}`);
  check(Number.isFinite(o.frameRateHz) && o.frameRateHz > 0 && o.frameRateHz <= 1000, `frameRateHz must be in (0, 1000], got ${o.frameRateHz}`);
  check([8, 10, 12, 14, 16].includes(o.bitsStored), `bitsStored must be 8, 10, 12, 14 or 16, got ${o.bitsStored}`);
  check(o.photometric === 'MONOCHROME1' || o.photometric === 'MONOCHROME2', `photometric must be MONOCHROME1 or MONOCHROME2`);
  const c = o.contrast;
  if (c !== null) {
    const ok = int(c.startFrame, 0, frames - 1) && int(c.peakFrame, c.startFrame, frames - 1) && int(c.endFrame, c.peakFrame, frames - 1);
    check(ok, `contrast needs integer frames 0 <= startFrame <= peakFrame <= endFrame < ${frames}, got ${JSON.stringify(c)}`);
  }
  return o;
}

/** Folds any safe integer seed into the generator's 32-bit state. */
function seedState(seed: number): number {
  const high = Math.floor(seed / 2 ** 32);
  return ((seed >>> 0) ^ Math.imul(high >>> 0, 0x9e3779b1)) >>> 0;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new ArteriaError('CONFIG_INVALID', message);
}
