import { forEachPixelInDisc } from './raster.js';

/**
 * The static scene of a synthetic run, in relative units: a textured background, a vessel
 * tree (visible only with contrast, which fills it from the catheter tip outwards) and a
 * radio-opaque catheter. Frames are rendered from
 * it in synthesize.ts.
 */
export interface Anatomy {
  /** Transmitted intensity without structures, 0..1. */
  background: Float32Array;
  /** Vessel thickness, 0 (none) to 1 (centre of the widest vessel). */
  vessels: Float32Array;
  /**
   * Where each vessel pixel lies along the tree, 0 at the ostium (catheter tip) to 1 at
   * the farthest branch end: the order in which contrast reaches it.
   */
  arrival: Float32Array;
  /** Catheter thickness, 0..1. */
  catheter: Float32Array;
}

export function buildAnatomy(rows: number, columns: number, rand: () => number): Anatomy {
  return {
    background: buildBackground(rows, columns, rand),
    ...buildStructures(rows, columns, rand),
  };
}

/** Smooth low-frequency shading plus faint tissue texture, from separable cosine products. */
function buildBackground(rows: number, columns: number, rand: () => number): Float32Array {
  const terms: { amplitude: number; fx: Float32Array; fy: Float32Array }[] = [];
  const addTerm = (amplitude: number, cycles: number): void => {
    const wave = (n: number): Float32Array => {
      const k = (2 * Math.PI * (0.3 + rand() * cycles)) / n;
      const phase = rand() * 2 * Math.PI;
      return Float32Array.from({ length: n }, (_, i) => Math.cos(k * i + phase));
    };
    terms.push({ amplitude, fx: wave(columns), fy: wave(rows) });
  };
  for (let i = 0; i < 3; i++) addTerm(0.08 + rand() * 0.06, 1.2);
  for (let i = 0; i < 3; i++) addTerm(0.012 + rand() * 0.01, 9);
  const level = 0.5 + rand() * 0.12;
  const out = new Float32Array(rows * columns);
  for (let y = 0; y < rows; y++) {
    const ny = (2 * y) / rows - 1;
    for (let x = 0; x < columns; x++) {
      const nx = (2 * x) / columns - 1;
      let v = level * (1 - 0.25 * (nx * nx + ny * ny)); // detector vignetting
      for (const t of terms) v += t.amplitude * (t.fx[x] ?? 0) * (t.fy[y] ?? 0);
      out[y * columns + x] = Math.min(0.9, Math.max(0.12, v));
    }
  }
  return out;
}

function buildStructures(rows: number, columns: number, rand: () => number): Omit<Anatomy, 'background'> {
  const size = Math.min(rows, columns);
  const vessels = new Float32Array(rows * columns);
  const arrival = new Float32Array(rows * columns);
  const catheter = new Float32Array(rows * columns);
  const none = new Float32Array(0);
  const at = (fx: number, fy: number): Point => ({ x: fx * columns, y: fy * rows });
  const tube = (path: Path, startRadius: number, endRadius: number): void =>
    drawTube({ map: vessels, arrival, rows, columns }, path, startRadius, endRadius);

  // Main vessel crossing the field, with branches leaving it and a twig off each branch.
  const trunkWidth = size * (0.028 + rand() * 0.01);
  const trunk = curve(at(0.15 + rand() * 0.2, 0.08), at(0.3 + rand() * 0.4, 0.45 + rand() * 0.1), at(0.55 + rand() * 0.3, 0.92), 0);
  tube(trunk, trunkWidth, trunkWidth * 0.6);
  const branches = 3 + Math.floor(rand() * 3);
  for (let b = 0; b < branches; b++) {
    const origin = pick(trunk, 0.1 + rand() * 0.7);
    const side = rand() < 0.5 ? -1 : 1;
    const end = { x: origin.x + side * size * (0.25 + rand() * 0.3), y: origin.y + size * (rand() * 0.4 - 0.1) };
    const mid = { x: (origin.x + end.x) / 2 + size * (rand() - 0.5) * 0.2, y: (origin.y + end.y) / 2 + size * (rand() - 0.5) * 0.2 };
    const width = trunkWidth * (0.45 + rand() * 0.3);
    const branch = curve(origin, mid, end, origin.distance);
    tube(branch, width, width * 0.5);
    const tip = pick(branch, 0.4 + rand() * 0.3);
    const twig = curve(tip, { x: tip.x + side * size * 0.08, y: tip.y + size * 0.1 }, { x: tip.x + side * size * 0.12, y: tip.y + size * 0.25 }, tip.distance);
    tube(twig, width * 0.6, width * 0.4);
  }
  let farthest = 0;
  for (const d of arrival) farthest = Math.max(farthest, d);
  for (let i = 0; i < arrival.length; i++) arrival[i]! /= farthest;

  // The catheter comes up from the bottom edge and ends at the vessel's ostium.
  const ostium = trunk[0] ?? { ...at(0.2, 0.1), distance: 0 };
  const path = curve(at(0.5 + rand() * 0.3, 1.05), at(0.75 + rand() * 0.15, 0.4), ostium, 0);
  const catheterWidth = Math.max(1.2, size * 0.008);
  drawTube({ map: catheter, arrival: none, rows, columns }, path, catheterWidth, catheterWidth);
  return { vessels, arrival, catheter };
}

interface Point {
  x: number;
  y: number;
}

/** Points along a vessel, each with its path length from the ostium. */
type Path = (Point & { distance: number })[];

const pick = (path: Path, fraction: number): Path[number] => path[Math.floor(fraction * (path.length - 1))] ?? { x: 0, y: 0, distance: 0 };

/** A quadratic Bézier sampled every ~0.5 px, starting `distance` along the tree. */
function curve(a: Point, c: Point, b: Point, distance: number): Path {
  const length = Math.hypot(c.x - a.x, c.y - a.y) + Math.hypot(b.x - c.x, b.y - c.y);
  const steps = Math.max(2, Math.ceil(length * 2));
  const points: Path = [];
  let travelled = distance;
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const u = 1 - t;
    const p = { x: u * u * a.x + 2 * u * t * c.x + t * t * b.x, y: u * u * a.y + 2 * u * t * c.y + t * t * b.y };
    const previous = points[i - 1];
    if (previous !== undefined) travelled += Math.hypot(p.x - previous.x, p.y - previous.y);
    points.push({ ...p, distance: travelled });
  }
  return points;
}

interface Canvas {
  map: Float32Array;
  /** Receives the path distance of the sample that set each pixel; empty to skip. */
  arrival: Float32Array;
  rows: number;
  columns: number;
}

/**
 * Splats a cylinder along the path: its projected thickness is the chord length,
 * sqrt(1 - (d/r)^2), tapering from startRadius to endRadius.
 */
function drawTube({ map, arrival, rows, columns }: Canvas, path: Path, startRadius: number, endRadius: number): void {
  const last = path.length - 1;
  path.forEach((p, i) => {
    const r = Math.max(0.7, startRadius + ((endRadius - startRadius) * i) / last);
    const weight = r / Math.max(startRadius, endRadius, 0.7);
    forEachPixelInDisc(p.x, p.y, r, rows, columns, (k, d2) => {
      const v = weight * Math.sqrt(1 - d2 / (r * r));
      if (v > (map[k] ?? 0)) {
        map[k] = v;
        if (arrival.length > 0) arrival[k] = p.distance;
      }
    });
  });
}
