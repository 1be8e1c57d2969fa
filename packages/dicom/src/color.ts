/**
 * Color runs (three samples a pixel: a video capture of the lab's monitor stored as True
 * Color Secondary Capture, an export through a viewer) are handed to algorithms as what an
 * X-ray run is: one 8-bit luminance sample a pixel, MONOCHROME2. Luminance is ITU-R BT.601's
 * Y, which YBR data carries as its first sample and RGB gives as 0.299 R + 0.587 G + 0.114 B
 * (in 16-bit fixed point whose weights sum to 65536, so a gray pixel R = G = B keeps its
 * value exactly).
 */

/** Photometric interpretations of three-sample pixels that are decoded to luminance. */
export const COLOR_PHOTOMETRICS: readonly string[] = ['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT'];
/** Those a native (uncompressed) run may carry; the others exist only inside a compressed codestream. */
export const NATIVE_COLOR_PHOTOMETRICS: readonly string[] = ['RGB', 'YBR_FULL'];

const R = 19595;
const G = 38470;
const B = 7471;

/**
 * Luminance of `pixels` full-resolution pixels whose samples start at `source[0]`: interleaved
 * (R G B R G B ..., planar 0) or one plane per sample (planar 1, per frame), as RGB or as
 * Y Cb Cr (any YBR: Y is taken as it is). Writes `pixels` bytes into `target` at `at`.
 */
export function luminance(source: Uint8Array, pixels: number, rgb: boolean, planar: boolean, target: Uint8Array, at: number): void {
  if (!rgb) {
    if (planar) target.set(source.subarray(0, pixels), at);
    else for (let p = 0; p < pixels; p++) target[at + p] = source[p * 3]!;
    return;
  }
  const [stride, g, b] = planar ? [1, pixels, 2 * pixels] : [3, 1, 2];
  for (let p = 0; p < pixels; p++) {
    const i = p * stride;
    target[at + p] = (R * source[i]! + G * source[i + g]! + B * source[i + b]! + 32768) >>> 16;
  }
}

/** What nativeColorLuminance needs of a header. */
export interface NativeColorLayout {
  rows: number;
  columns: number;
  photometricInterpretation: string;
  planarConfiguration: number;
}

/**
 * `frames` native color frames (3 samples a pixel, by pixel or, planar, by plane within each
 * frame) as 8-bit luminance, frame after frame: a third of `source`'s bytes. A whole run, a
 * batch of a run read as it streams, or a segment of one sent while it is acquired.
 */
export function nativeColorLuminance(source: Uint8Array, frames: number, layout: NativeColorLayout): Uint8Array {
  const pixels = layout.rows * layout.columns;
  const out = new Uint8Array(pixels * frames);
  const rgb = layout.photometricInterpretation === 'RGB';
  for (let f = 0; f < frames; f++) luminance(source.subarray(f * pixels * 3, (f + 1) * pixels * 3), pixels, rgb, layout.planarConfiguration === 1, out, f * pixels);
  return out;
}
