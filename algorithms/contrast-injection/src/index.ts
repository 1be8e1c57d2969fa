import { batchStack, defineAlgorithm, type AlgorithmContext, type RunInput, type StreamInput } from '@arteria/sdk';
import { baselineFrameCount } from './detect.js';
import { contrastIncremental } from './incremental.js';
import { assertEnoughFrames, summarize, type ContrastInjectionOutput } from './output.js';
import { DarkeningTracker, darkeningCurves } from './signal.js';

export { MIN_FRAMES, MAX_CURVE_POINTS, type ContrastInjectionOutput, type Injection } from './output.js';
export { contrastIncremental, type ContrastState } from './incremental.js';

export function detectContrastInjection({ frames }: RunInput, { signal }: AlgorithmContext): ContrastInjectionOutput {
  assertEnoughFrames(frames);
  return summarize(frames, darkeningCurves(frames, baselineFrameCount(frames.frameCount), signal));
}

/** The same detection on a streamed run: each batch is folded in as it arrives. */
export async function streamContrastInjection({ frames, batches }: StreamInput, { signal }: AlgorithmContext): Promise<ContrastInjectionOutput> {
  assertEnoughFrames(frames);
  const tracker = new DarkeningTracker(frames, baselineFrameCount(frames.frameCount));
  for await (const batch of batches) tracker.add(batchStack(frames, batch), signal);
  return summarize(frames, tracker.finish());
}

export default defineAlgorithm<ContrastInjectionOutput>({ run: detectContrastInjection, runStream: streamContrastInjection, incremental: contrastIncremental });
