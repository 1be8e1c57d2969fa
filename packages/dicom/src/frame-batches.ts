import { ArteriaError } from '@arteria/protocol';
import type { FrameBatch, FrameLayout, FrameStack } from './types.js';

/** Samples in one frame. */
const frameSamples = (layout: FrameLayout): number => layout.rows * layout.columns;

/** The frames of a whole stack as batches of views into it (no copy). */
// eslint-disable-next-line @typescript-eslint/require-await -- async on purpose: it stands in for a stream of batches
export async function* stackBatches(frames: FrameStack, framesPerBatch: number): AsyncGenerator<FrameBatch> {
  if (!Number.isSafeInteger(framesPerBatch) || framesPerBatch < 1) throw new ArteriaError('INTERNAL', `framesPerBatch must be a positive integer, got ${framesPerBatch}`);
  const plane = frameSamples(frames);
  for (let first = 0; first < frames.frameCount; first += framesPerBatch) {
    const count = Math.min(framesPerBatch, frames.frameCount - first);
    yield { firstFrame: first, frameCount: count, pixels: frames.pixels.subarray(first * plane, (first + count) * plane) };
  }
}

/**
 * One batch as a FrameStack of its own (frame i of the stack is frame firstFrame+i of the
 * run), so per-frame code written for whole runs also takes a batch.
 */
export function batchStack(layout: FrameLayout, batch: FrameBatch): FrameStack {
  return { ...layout, frameCount: batch.frameCount, pixels: batch.pixels };
}

/**
 * Collects a run's batches into one stack: how a streamed run reaches an algorithm that
 * only takes whole runs. Needs memory for the whole run, as such algorithms always did.
 */
export async function collectFrames(layout: FrameLayout, batches: AsyncIterable<FrameBatch>): Promise<FrameStack> {
  const plane = frameSamples(layout);
  let pixels: Uint8Array | Uint16Array | undefined;
  let frames = 0;
  for await (const batch of batches) {
    pixels ??= batch.pixels instanceof Uint16Array ? new Uint16Array(plane * layout.frameCount) : new Uint8Array(plane * layout.frameCount);
    if (batch.firstFrame !== frames || batch.firstFrame + batch.frameCount > layout.frameCount) {
      throw new ArteriaError('INTERNAL', `frame batch ${batch.firstFrame}+${batch.frameCount} does not follow frame ${frames} of ${layout.frameCount}`);
    }
    pixels.set(batch.pixels, batch.firstFrame * plane);
    frames += batch.frameCount;
  }
  if (pixels === undefined || frames !== layout.frameCount) {
    throw new ArteriaError('INVALID_DICOM', `the run ended after ${frames} of ${layout.frameCount} frames`);
  }
  return { ...layout, pixels };
}
