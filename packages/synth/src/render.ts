import { mulberry32, uniform } from '@arteria/dicom';
import type { Point } from './geometry.js';
import { normaliseBalloonRun, type BalloonRunInput, type BalloonRunOptions } from './options.js';
import { buildScene, type BalloonGeometry, type Scene } from './scene.js';
import { balloonState, contrastLevel, inflationEvents, panOffset, type BalloonPhase } from './timeline.js';

/** Ground truth of one frame. */
export interface FrameTruth {
  phase: BalloonPhase;
  /** 0 deflated .. 1 fully inflated. */
  fill: number;
  /** Whether the balloon is at least half inflated: what the detector reports. */
  inflated: boolean;
  /** Marker centres in frame pixels (proximal, distal); null without a balloon device. */
  markers: [Point, Point] | null;
  /** Vessel contrast 0..1. */
  contrast: number;
}

export interface BalloonRunTruth {
  options: BalloonRunOptions;
  frameTimeMs: number;
  bitsAllocated: 8 | 16;
  perFrame: FrameTruth[];
  /** Inclusive frame intervals where the balloon is at least half inflated. */
  events: { startFrame: number; endFrame: number }[];
}

export interface RenderedRun {
  /** Stored pixel values, frame-major; Uint8Array when bitsStored is 8. */
  pixels: Uint8Array | Uint16Array;
  truth: BalloonRunTruth;
}

/** Quantum noise variance per unit of relative intensity at dose 1 (about 1.5% at mid-grey). */
const NOISE_VARIANCE_GAIN = 0.0004;
const NOISE_TABLE_SIZE = 1 << 14;
/** Brightest intensity maps to this share of the stored range, leaving headroom for noise. */
const WHITE_LEVEL = 0.92;
/**
 * The scene's vessels are chord thickness (frame-size units); rendering turns them into log
 * attenuation: iodine-filled at contrast strength 1, and without contrast.
 */
const VESSEL_CONTRAST_MU = 11;
const VESSEL_NATIVE_MU = 0.5;
/** Balloon contrast is less diluted than contrast in flowing blood. */
const BALLOON_CONTRAST_MU = 15;

/**
 * Renders a seeded, deterministic synthetic angioplasty run: textured anatomy, vessels that
 * fill with contrast, catheter, guidewire, a balloon between two radio-opaque markers that
 * inflates and deflates, cardiac and respiratory motion, table pan, exposure flicker and
 * quantum noise. Same options give the same pixels.
 */
export function renderBalloonRun(input: BalloonRunInput = {}): RenderedRun {
  const o = normaliseBalloonRun(input);
  const next = mulberry32(seedState(o.seed));
  const rand = uniform(next);
  const size = Math.min(o.rows, o.columns);
  const panReach = o.tablePan === null ? 0 : Math.max(Math.abs(o.tablePan.dx), Math.abs(o.tablePan.dy));
  const scene = buildScene(o.rows, o.columns, 0.06 * Math.max(1, o.motion) + panReach, o.device === 'balloon', rand);
  const noise = gaussianTable(next, NOISE_TABLE_SIZE);
  const frameTimeMs = 1000 / o.frameRateHz;
  const heartPeriodMs = 550 + rand() * 450;
  const breathPeriodMs = 3000 + rand() * 2500;
  const heartPhase = rand() * 2 * Math.PI;
  const breathPhase = rand() * 2 * Math.PI;
  const cardiacPx = size * 0.01 * o.motion;
  const breathPx = size * 0.012 * o.motion;

  const plane = o.rows * o.columns;
  const maxValue = 2 ** o.bitsStored - 1;
  const samples = o.bitsStored <= 8 ? new Uint8Array(plane * o.frames) : new Uint16Array(plane * o.frames);
  const vignette = vignetting(o.rows, o.columns);
  const dynamic = new Float32Array(plane);
  const noiseGain = NOISE_VARIANCE_GAIN / o.dose;
  const perFrame: FrameTruth[] = [];

  for (let f = 0; f < o.frames; f++) {
    const t = f * frameTimeMs;
    const beat = (2 * Math.PI * t) / heartPeriodMs + heartPhase;
    const breath = Math.sin((2 * Math.PI * t) / breathPeriodMs + breathPhase);
    const pan = panOffset(o.tablePan, f, size);
    // Background moves with breathing and the table; heart-borne structures also with the beat.
    const bx = pan.x + breathPx * 0.3 * breath;
    const by = pan.y + breathPx * breath;
    const sx = bx + cardiacPx * Math.sin(beat);
    const sy = by + cardiacPx * 0.6 * Math.sin(beat + 0.8);
    const { fill, phase } = balloonState(o.device, o.inflation, f);
    const contrast = contrastLevel(o.contrast, f);
    let markers: [Point, Point] | null = null;
    let box: Box | null = null;
    if (scene.balloon !== null) {
      const b = scene.balloon;
      markers = [
        { x: b.proximal.x + sx, y: b.proximal.y + sy },
        { x: b.distal.x + sx, y: b.distal.y + sy },
      ];
      box = drawBalloon(dynamic, o.rows, o.columns, b, markers, fill, (BALLOON_CONTRAST_MU * o.contrastStrength) / size);
    }
    perFrame.push({ phase, fill, inflated: fill >= 0.5, markers, contrast });

    const gain = 1 + 0.01 * noise[next() & (NOISE_TABLE_SIZE - 1)]!;
    const vesselMu = VESSEL_NATIVE_MU + VESSEL_CONTRAST_MU * o.contrastStrength * contrast;
    renderFrame(samples, f * plane, scene, o, dynamic, vignette, {
      bx: Math.round(bx),
      by: Math.round(by),
      sx: Math.round(sx),
      sy: Math.round(sy),
      gain,
      vesselMu,
      noiseGain,
      maxValue,
      noise,
      state: next() | 1,
    });
    if (box !== null) clearBox(dynamic, o.columns, box);
  }
  const truth: BalloonRunTruth = {
    options: o,
    frameTimeMs,
    bitsAllocated: o.bitsStored <= 8 ? 8 : 16,
    perFrame,
    events: inflationEvents(perFrame.map((p) => p.fill)),
  };
  return { pixels: samples, truth };
}

interface FrameParams {
  bx: number;
  by: number;
  sx: number;
  sy: number;
  gain: number;
  vesselMu: number;
  noiseGain: number;
  maxValue: number;
  noise: Float32Array;
  state: number;
}

function renderFrame(out: Uint8Array | Uint16Array, offset: number, scene: Scene, o: BalloonRunOptions, dynamic: Float32Array, vignette: Float32Array, p: FrameParams): void {
  const { background, vessels, devices, pad, width } = scene;
  const { gain, vesselMu, noiseGain, maxValue, noise } = p;
  const invert = o.photometric === 'MONOCHROME1';
  const scale = maxValue * WHITE_LEVEL;
  const mask = NOISE_TABLE_SIZE - 1;
  let state = p.state;
  for (let y = 0; y < o.rows; y++) {
    const bRow = (y + pad - p.by) * width + pad - p.bx;
    const sRow = (y + pad - p.sy) * width + pad - p.sx;
    const fRow = y * o.columns;
    for (let x = 0; x < o.columns; x++) {
      const s = sRow + x;
      const a = background[bRow + x]! + devices[s]! + vessels[s]! * vesselMu + dynamic[fRow + x]! + vignette[fRow + x]!;
      let v = gain * Math.exp(-a);
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      v += Math.sqrt(v * noiseGain) * noise[state & mask]!;
      const q = v <= 0 ? 0 : v >= 1 / WHITE_LEVEL ? maxValue : (v * scale + 0.5) | 0;
      out[offset + fRow + x] = invert ? maxValue - q : q;
    }
  }
}

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/**
 * Draws balloon and markers into `layer` (log attenuation): a contrast-filled cylinder
 * between the markers whose radius grows with the fill, tapered at both ends.
 */
function drawBalloon(layer: Float32Array, rows: number, columns: number, b: BalloonGeometry, [p, d]: [Point, Point], fill: number, mu: number): Box {
  const radius = b.deflatedRadius + (b.inflatedRadius - b.deflatedRadius) * fill;
  // A deflated balloon holds little contrast; filling it is what makes it dark.
  const density = mu * (0.15 + 0.85 * fill);
  const length = Math.hypot(d.x - p.x, d.y - p.y);
  const ux = (d.x - p.x) / length;
  const uy = (d.y - p.y) / length;
  const reach = Math.max(radius, b.markerRadius) + 1;
  const box = {
    x0: Math.max(0, Math.floor(Math.min(p.x, d.x) - reach)),
    x1: Math.min(columns - 1, Math.ceil(Math.max(p.x, d.x) + reach)),
    y0: Math.max(0, Math.floor(Math.min(p.y, d.y) - reach)),
    y1: Math.min(rows - 1, Math.ceil(Math.max(p.y, d.y) + reach)),
  };
  const taper = Math.max(1, Math.min(length * 0.15, radius * 1.5));
  for (let y = box.y0; y <= box.y1; y++) {
    for (let x = box.x0; x <= box.x1; x++) {
      const rx = x - p.x;
      const ry = y - p.y;
      const along = rx * ux + ry * uy;
      const across = rx * -uy + ry * ux;
      let a = 0;
      if (along > 0 && along < length) {
        const r = radius * Math.sqrt(Math.min(1, along / taper, (length - along) / taper));
        const c2 = r * r - across * across;
        if (c2 > 0) a += density * 2 * Math.sqrt(c2);
      }
      a += marker(rx, ry, b) + marker(x - d.x, y - d.y, b);
      layer[y * columns + x] = a;
    }
  }
  return box;
}

function marker(dx: number, dy: number, b: BalloonGeometry): number {
  const d2 = (dx * dx + dy * dy) / (b.markerRadius * b.markerRadius);
  return d2 >= 1 ? 0 : b.markerAttenuation * Math.sqrt(1 - d2);
}

function clearBox(layer: Float32Array, columns: number, box: Box): void {
  for (let y = box.y0; y <= box.y1; y++) layer.fill(0, y * columns + box.x0, y * columns + box.x1 + 1);
}

/** Detector vignetting as log attenuation, darker towards the corners. */
function vignetting(rows: number, columns: number): Float32Array {
  const out = new Float32Array(rows * columns);
  for (let y = 0; y < rows; y++) {
    const ny = (2 * y) / rows - 1;
    for (let x = 0; x < columns; x++) {
      const nx = (2 * x) / columns - 1;
      out[y * columns + x] = 0.2 * (nx * nx + ny * ny);
    }
  }
  return out;
}

function gaussianTable(next: () => number, size: number): Float32Array {
  const rand = uniform(next);
  const table = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const theta = 2 * Math.PI * rand();
    table[i] = r * Math.cos(theta);
    table[i + 1] = r * Math.sin(theta);
  }
  return table;
}

/** Folds any safe integer seed into the generator's 32-bit state. */
function seedState(seed: number): number {
  const high = Math.floor(seed / 2 ** 32);
  return ((seed >>> 0) ^ Math.imul(high >>> 0, 0x9e3779b1)) >>> 0;
}
