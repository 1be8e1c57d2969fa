import { forEachPixelInDisc } from '@arteria/dicom';

/** Points, quadratic Bézier paths and tube splatting for synthetic scenes, in pixels. */
export interface Point {
  x: number;
  y: number;
}

/** Points along a curve, sampled densely enough to splat discs along it. */
export type Path = Point[];

/** A quadratic Bézier from a through control c to b, sampled every `stepPx`. */
export function curve(a: Point, c: Point, b: Point, stepPx: number): Path {
  const length = Math.hypot(c.x - a.x, c.y - a.y) + Math.hypot(b.x - c.x, b.y - c.y);
  const steps = Math.max(2, Math.ceil(length / Math.max(0.25, stepPx)));
  const points: Path = [];
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const u = 1 - t;
    points.push({ x: u * u * a.x + 2 * u * t * c.x + t * t * b.x, y: u * u * a.y + 2 * u * t * c.y + t * t * b.y });
  }
  return points;
}

/** The point at `fraction` (0..1) of the path's samples. */
export function pointAt(path: Path, fraction: number): Point {
  return path[Math.round(Math.min(1, Math.max(0, fraction)) * (path.length - 1))] ?? { x: 0, y: 0 };
}

/** Unit tangent of the path at `fraction`. */
export function tangentAt(path: Path, fraction: number): Point {
  const i = Math.round(Math.min(1, Math.max(0, fraction)) * (path.length - 1));
  const a = path[Math.max(0, i - 2)] ?? { x: 0, y: 0 };
  const b = path[Math.min(path.length - 1, i + 2)] ?? { x: 1, y: 0 };
  const n = Math.hypot(b.x - a.x, b.y - a.y) || 1;
  return { x: (b.x - a.x) / n, y: (b.y - a.y) / n };
}

export interface Canvas {
  map: Float32Array;
  rows: number;
  columns: number;
}

/**
 * Splats a cylinder along the path, keeping the larger value where tubes overlap: its
 * projected thickness is the chord through it, `scale * 2 * sqrt(r^2 - d^2)` with r
 * tapering from startRadius to endRadius (pixels).
 */
export function drawTube({ map, rows, columns }: Canvas, path: Path, startRadius: number, endRadius: number, scale: number): void {
  const last = Math.max(1, path.length - 1);
  // Splatting every sample of a wide tube is wasted work: a quarter radius apart is smooth.
  let skipUntil = -1;
  path.forEach((p, i) => {
    const r = Math.max(0.5, startRadius + ((endRadius - startRadius) * i) / last);
    if (i < skipUntil && i !== last) return;
    skipUntil = i + Math.max(1, Math.floor(r / 4 / Math.max(1e-6, segmentLength(path, i))));
    forEachPixelInDisc(p.x, p.y, r, rows, columns, (k, d2) => {
      const v = scale * 2 * Math.sqrt(r * r - d2);
      if (v > map[k]!) map[k] = v;
    });
  });
}

function segmentLength(path: Path, i: number): number {
  const a = path[i];
  const b = path[i + 1] ?? path[i - 1];
  return a === undefined || b === undefined ? 1 : Math.hypot(b.x - a.x, b.y - a.y);
}
