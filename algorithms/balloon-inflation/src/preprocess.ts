import type { FrameStack } from '@arteria/sdk';
import { findMarkers, type MarkerPair } from './markers.js';
import { extractPatch, PATCH_COLUMNS, PATCH_ROWS } from './patch.js';
import { windowFor, workingImage, type Window } from './working-image.js';

export interface PreparedRun {
  frameCount: number;
  /** Patches of the frames where markers were found, in frame order; PATCH_ROWS*PATCH_COLUMNS each. */
  patches: Float32Array;
  /** For each patch, the frame it came from. */
  patchFrames: number[];
  /** Per frame, the markers found (working-image pixels), or null. */
  markers: (MarkerPair | null)[];
  window: Window;
}

/**
 * Model input of a run, whatever its frame size, bit depth and photometric interpretation:
 * each frame is windowed to log attenuation, binned to the working size, searched for the
 * two balloon markers, and a marker-aligned patch is cut out where they are found.
 */
export function prepareRun(frames: FrameStack, windowCenter?: number, windowWidth?: number, signal?: AbortSignal): PreparedRun {
  const window = windowFor(frames, windowCenter, windowWidth);
  const size = PATCH_ROWS * PATCH_COLUMNS;
  const buffer = new Float32Array(frames.frameCount * size);
  const patchFrames: number[] = [];
  const markers: (MarkerPair | null)[] = [];
  for (let f = 0; f < frames.frameCount; f++) {
    signal?.throwIfAborted();
    const image = workingImage(frames, f, window);
    const pair = findMarkers(image);
    markers.push(pair);
    if (pair === null) continue;
    extractPatch(image, pair, buffer, patchFrames.length * size);
    patchFrames.push(f);
  }
  return { frameCount: frames.frameCount, patches: buffer.slice(0, patchFrames.length * size), patchFrames, markers, window };
}
