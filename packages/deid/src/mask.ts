import type { DenaturalizedDataset } from 'dcmjs';
import { ArteriaError } from '@arteria/protocol';
import type { MaskRegion } from './profile.js';

function num(ds: DenaturalizedDataset, tag: string, fallback: number): number {
  const v = Number(ds[tag]?.Value?.[0]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Overwrites the regions of every frame of native (uncompressed) pixel data with zeros. */
export function maskRegions(ds: DenaturalizedDataset, regions: readonly MaskRegion[]): void {
  const pixels = ds['7FE00010']?.Value;
  const buffer = pixels?.length === 1 ? pixels[0] : undefined;
  if (!(buffer instanceof ArrayBuffer)) throw new ArteriaError('DEIDENTIFICATION_REFUSED', 'burned-in annotation cannot be masked: no native pixel data');
  const rows = num(ds, '00280010', 0);
  const columns = num(ds, '00280011', 0);
  const frames = num(ds, '00280008', 1);
  const samples = num(ds, '00280002', 1);
  const bytesPerSample = num(ds, '00280100', 8) / 8;
  const pixelBytes = samples * bytesPerSample;
  const frameBytes = rows * columns * pixelBytes;
  if (rows === 0 || columns === 0 || frameBytes * frames > buffer.byteLength || num(ds, '00280006', 0) === 1) {
    throw new ArteriaError('DEIDENTIFICATION_REFUSED', 'burned-in annotation cannot be masked: pixel data does not match its description (or is planar)');
  }
  const bytes = new Uint8Array(buffer);
  for (let f = 0; f < frames; f += 1) {
    for (const r of regions) {
      const x0 = Math.min(r.x, columns);
      const x1 = Math.min(r.x + r.width, columns);
      for (let y = r.y; y < Math.min(r.y + r.height, rows); y += 1) {
        const start = f * frameBytes + (y * columns + x0) * pixelBytes;
        bytes.fill(0, start, start + (x1 - x0) * pixelBytes);
      }
    }
  }
}
