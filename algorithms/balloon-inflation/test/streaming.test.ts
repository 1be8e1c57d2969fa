import { describe, expect, it } from 'vitest';
import { REFERENCE_FRAMES, addFrames, endInput, inputState, prepareRun } from '@arteria/balloon-inflation';
import { batchStack, stackBatches, type FrameStack } from '@arteria/sdk';
import { firstDifference, stackOf } from './rendered.js';

function renderedStack(frames: number, seed: number, size: number): FrameStack {
  return stackOf({ frames, seed, rows: size, columns: size, inflation: null });
}

async function inBatches(stack: FrameStack, framesPerBatch: number): Promise<{ tensor: Float32Array; readyAfter: number[] }> {
  const state = inputState(stack.photometric);
  const parts: Float32Array[] = [];
  const readyAfter: number[] = [];
  for await (const batch of stackBatches(stack, framesPerBatch)) {
    const part = addFrames(state, batchStack(stack, batch));
    parts.push(part);
    readyAfter.push(part.length);
  }
  parts.push(endInput(state));
  const tensor = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    tensor.set(part, at);
    at += part.length;
  }
  return { tensor, readyAfter };
}

// Frames become model input as they arrive (from the REFERENCE_FRAMES-th on); whatever the
// batching, the model sees exactly the input prepareRun makes from the whole run.
describe('balloon-inflation pre-processing in batches', () => {
  it('makes the same model input from any batching as from the whole run', { timeout: 120_000 }, async () => {
    const stack = renderedStack(12, 35, 256);
    const whole = prepareRun(stack);
    for (const framesPerBatch of [1, 5, 12]) {
      const { tensor } = await inBatches(stack, framesPerBatch);
      expect(firstDifference(tensor, whole.tensor), `${framesPerBatch} per batch`).toBe(-1);
    }
  });

  it('holds frames back only until the reference is settled, or the run ends', { timeout: 120_000 }, async () => {
    const plane = prepareRun(renderedStack(1, 36, 128)).tensor.length;
    const { readyAfter } = await inBatches(renderedStack(REFERENCE_FRAMES + 2, 36, 128), 1);
    expect(readyAfter.map((n) => n / plane)).toEqual([...Array<number>(REFERENCE_FRAMES - 1).fill(0), REFERENCE_FRAMES, 1, 1]);
    const short = renderedStack(3, 37, 128);
    const state = inputState(short.photometric);
    expect(addFrames(state, short)).toHaveLength(0);
    expect(endInput(state)).toHaveLength(3 * plane);
    expect(endInput(state)).toHaveLength(0);
  });
});
