/**
 * Calls `visit` for each pixel of a rows x columns image (row-major index `k`) that lies
 * within `r` of (cx, cy), with its squared distance: the disc a tube splats at each step of
 * its path (the synthetic anatomy here, the balloon scenes of `synth`).
 */
export function forEachPixelInDisc(cx: number, cy: number, r: number, rows: number, columns: number, visit: (k: number, d2: number) => void): void {
  const x0 = Math.max(0, Math.floor(cx - r));
  const x1 = Math.min(columns - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r));
  const y1 = Math.min(rows - 1, Math.ceil(cy + r));
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const d2 = (x - cx) ** 2 + (y - cy) ** 2;
      if (d2 < r2) visit(y * columns + x, d2);
    }
  }
}
