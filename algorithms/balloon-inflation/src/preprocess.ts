import type { FrameLayout, FrameStack } from '@arteria/sdk';
import { findMarkers, type MarkerPair } from './markers.js';
import { extractPatch, PATCH_COLUMNS, PATCH_ROWS } from './patch.js';
import { windowFor, workingImage, type Window } from './working-image.js';

const PATCH_SIZE = PATCH_ROWS * PATCH_COLUMNS;

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
  const preparer = new RunPreparer(frames, windowCenter, windowWidth);
  preparer.add(frames, signal);
  return preparer.finish();
}

/**
 * prepareRun one batch of frames at a time, in frame order: it keeps a patch per frame
 * with markers (2 KB), never the frames themselves.
 */
export class RunPreparer {
  readonly #window: Window;
  readonly #frameCount: number;
  readonly #buffer: Float32Array;
  readonly #patchFrames: number[] = [];
  readonly #markers: (MarkerPair | null)[] = [];

  constructor(layout: FrameLayout, windowCenter?: number, windowWidth?: number) {
    this.#window = windowFor(layout, windowCenter, windowWidth);
    this.#frameCount = layout.frameCount;
    this.#buffer = new Float32Array(layout.frameCount * PATCH_SIZE);
  }

  /** The run's next frames: frame 0 of `frames` follows the last frame added. */
  add(frames: FrameStack, signal?: AbortSignal): void {
    for (let i = 0; i < frames.frameCount; i++) {
      signal?.throwIfAborted();
      const f = this.#markers.length;
      if (f >= this.#frameCount) throw new Error(`frame ${f} is beyond the run's ${this.#frameCount} frames`);
      const image = workingImage(frames, i, this.#window);
      const pair = findMarkers(image);
      this.#markers.push(pair);
      if (pair === null) continue;
      extractPatch(image, pair, this.#buffer, this.#patchFrames.length * PATCH_SIZE);
      this.#patchFrames.push(f);
    }
  }

  finish(): PreparedRun {
    if (this.#markers.length !== this.#frameCount) throw new Error(`the run ended after ${this.#markers.length} of ${this.#frameCount} frames`);
    const patchFrames = this.#patchFrames;
    return { frameCount: this.#frameCount, patches: this.#buffer.slice(0, patchFrames.length * PATCH_SIZE), patchFrames, markers: this.#markers, window: this.#window };
  }
}
