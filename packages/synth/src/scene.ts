import { curve, drawTube, pointAt, tangentAt, type Path, type Point } from './geometry.js';

/**
 * The static part of a run, on a canvas padded around the field so that motion and table
 * pans bring real anatomy into view. Maps hold log attenuation (background, devices) or
 * chord thickness in frame-size units (vessels, multiplied by the contrast in the frame).
 */
export interface Scene {
  /** Padding on each side, pixels; field pixel (x, y) is canvas pixel (x + pad, y + pad). */
  pad: number;
  width: number;
  height: number;
  background: Float32Array;
  vessels: Float32Array;
  devices: Float32Array;
  /** Balloon between its markers, in field coordinates before motion; null without a balloon device. */
  balloon: BalloonGeometry | null;
}

export interface BalloonGeometry {
  proximal: Point;
  distal: Point;
  /** Radii in pixels. */
  inflatedRadius: number;
  deflatedRadius: number;
  markerRadius: number;
  /** Log attenuation at a marker's centre. */
  markerAttenuation: number;
}

export function buildScene(rows: number, columns: number, padFraction: number, withBalloon: boolean, rand: () => number): Scene {
  const size = Math.min(rows, columns);
  const pad = Math.ceil(size * padFraction);
  const width = columns + 2 * pad;
  const height = rows + 2 * pad;
  const background = buildBackground(width, height, size, rand);
  const vessels = new Float32Array(width * height);
  const devices = new Float32Array(width * height);
  const at = (fx: number, fy: number): Point => ({ x: pad + fx * columns, y: pad + fy * rows });
  const step = Math.max(0.5, size / 512);

  // Main vessel crossing the field, with branches leaving it.
  const trunkRadius = size * (0.018 + rand() * 0.012);
  const trunk = curve(at(0.2 + rand() * 0.25, 0.05), at(0.25 + rand() * 0.5, 0.4 + rand() * 0.2), at(0.45 + rand() * 0.35, 0.95), step);
  const vesselCanvas = { map: vessels, rows: height, columns: width };
  drawTube(vesselCanvas, trunk, trunkRadius, trunkRadius * 0.6, 1 / size);
  const branches = 2 + Math.floor(rand() * 4);
  for (let b = 0; b < branches; b++) {
    const origin = pointAt(trunk, 0.1 + rand() * 0.75);
    const side = rand() < 0.5 ? -1 : 1;
    const end = { x: origin.x + side * size * (0.2 + rand() * 0.35), y: origin.y + size * (rand() * 0.45 - 0.1) };
    const mid = { x: (origin.x + end.x) / 2 + size * (rand() - 0.5) * 0.2, y: (origin.y + end.y) / 2 + size * (rand() - 0.5) * 0.2 };
    const radius = trunkRadius * (0.4 + rand() * 0.3);
    drawTube(vesselCanvas, curve(origin, mid, end, step), radius, radius * 0.5, 1 / size);
  }

  const deviceCanvas = { map: devices, rows: height, columns: width };
  // Guiding catheter from the lower edge to the ostium (start of the trunk).
  const ostium = pointAt(trunk, 0);
  const catheter = curve(at(0.55 + rand() * 0.35, 1.3), at(0.75 + rand() * 0.2, 0.35), ostium, step);
  const catheterRadius = Math.max(0.8, size * (0.006 + rand() * 0.002));
  drawTube(deviceCanvas, catheter, catheterRadius, catheterRadius, (0.45 + rand() * 0.15) / (2 * catheterRadius));
  // Guidewire down the trunk, most of the time also when no balloon is used.
  if (withBalloon || rand() < 0.7) {
    const wire = trunk.slice(0, Math.round(trunk.length * (0.85 + rand() * 0.12)));
    drawTube(deviceCanvas, wire, 0.6, 0.6, (0.2 + rand() * 0.15) / 1.2);
  }
  let balloon: BalloonGeometry | null = null;
  if (withBalloon) balloon = placeBalloon(trunk, trunkRadius, size, pad, deviceCanvas, rand);
  return { pad, width, height, background, vessels, devices, balloon };
}

function placeBalloon(trunk: Path, trunkRadius: number, size: number, pad: number, canvas: { map: Float32Array; rows: number; columns: number }, rand: () => number): BalloonGeometry {
  const centre = 0.3 + rand() * 0.4;
  const length = size * (0.045 + rand() * 0.05);
  const c = pointAt(trunk, centre);
  const t = tangentAt(trunk, centre);
  const proximal = { x: c.x - (t.x * length) / 2 - pad, y: c.y - (t.y * length) / 2 - pad };
  const distal = { x: c.x + (t.x * length) / 2 - pad, y: c.y + (t.y * length) / 2 - pad };
  const localRadius = trunkRadius * (1 - 0.4 * centre);
  const inflatedRadius = Math.max(1.2, localRadius * (0.9 + rand() * 0.3));
  // Balloon shaft over the wire up to the distal marker.
  const end = Math.round(trunk.length * centre + (length / 2 / Math.max(1e-6, Math.hypot(trunk[1]!.x - trunk[0]!.x, trunk[1]!.y - trunk[0]!.y))));
  const shaftRadius = Math.max(0.7, size * 0.0025);
  drawTube(canvas, trunk.slice(0, Math.min(trunk.length, end)), shaftRadius, shaftRadius, (0.12 + rand() * 0.08) / (2 * shaftRadius));
  return {
    proximal,
    distal,
    inflatedRadius,
    deflatedRadius: inflatedRadius * (0.25 + rand() * 0.15),
    markerRadius: Math.max(0.9, size * (0.0045 + rand() * 0.002)),
    markerAttenuation: 1.1 + rand() * 0.8,
  };
}

/** Soft-tissue and bone shading plus fine texture, in log attenuation, from separable cosines. */
function buildBackground(width: number, height: number, size: number, rand: () => number): Float32Array {
  const terms: { amplitude: number; fx: Float32Array; fy: Float32Array }[] = [];
  const addTerm = (amplitude: number, cycles: number): void => {
    const wave = (n: number): Float32Array => {
      const k = (2 * Math.PI * (0.3 + rand() * cycles)) / size;
      const phase = rand() * 2 * Math.PI;
      return Float32Array.from({ length: n }, (_, i) => Math.cos(k * i + phase));
    };
    terms.push({ amplitude, fx: wave(width), fy: wave(height) });
  };
  for (let i = 0; i < 3; i++) addTerm(0.12 + rand() * 0.1, 1.5);
  for (let i = 0; i < 4; i++) addTerm(0.02 + rand() * 0.02, 12);
  const level = 0.5 + rand() * 0.5;
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = level;
      for (const t of terms) v += t.amplitude * t.fx[x]! * t.fy[y]!;
      out[y * width + x] = Math.max(0.05, v);
    }
  }
  return out;
}
