import { ArteriaError } from '@arteria/protocol';
import { batchStack, defineAlgorithm, type FrameLayout, type InferenceBackend, type ModelRef, type RunInput } from '@arteria/sdk';
import { MODEL_INPUT, MODEL_OUTPUT, shippedModel } from './model.js';
import { PATCH_COLUMNS, PATCH_ROWS } from './patch.js';
import { eventsFromProbabilities, type InflationEvent } from './postprocess.js';
import { RunPreparer, prepareRun, type PreparedRun } from './preprocess.js';

export interface BalloonInflationOutput {
  inflationDetected: boolean;
  events: InflationEvent[];
  frames: number;
  frameTimeMs: number;
  /** Frames where both balloon markers were found. */
  markerFrames: number;
}

/** Per-frame probability that the balloon is inflated (0 where no markers were found). */
export async function inflationProbabilities(input: RunInput, inference: InferenceBackend, model: ModelRef, signal?: AbortSignal): Promise<{ probabilities: number[]; markerFrames: number }> {
  const { frames, header } = input;
  return await probabilitiesOf(prepareRun(frames, header.windowCenter, header.windowWidth, signal), inference, model, signal);
}

async function probabilitiesOf(prepared: PreparedRun, inference: InferenceBackend, model: ModelRef, signal?: AbortSignal): Promise<{ probabilities: number[]; markerFrames: number }> {
  const probabilities = new Array<number>(prepared.frameCount).fill(0);
  const n = prepared.patchFrames.length;
  if (n > 0) {
    const outputs = await inference.infer(model, [{ name: MODEL_INPUT, type: 'float32', dims: [n, 1, PATCH_ROWS, PATCH_COLUMNS], data: prepared.patches }], signal);
    const output = outputs.find((t) => t.name === MODEL_OUTPUT) ?? outputs[0];
    if (output === undefined || !(output.data instanceof Float32Array) || output.data.length !== n) {
      throw new ArteriaError('INFERENCE_FAILED', `the model returned no ${MODEL_OUTPUT} tensor of ${n} probabilities`);
    }
    prepared.patchFrames.forEach((f, i) => (probabilities[f] = output.data[i] as number));
  }
  return { probabilities, markerFrames: n };
}

function needInference(inference: InferenceBackend | undefined): InferenceBackend {
  if (inference === undefined) throw new ArteriaError('MODEL_UNAVAILABLE', 'balloon-inflation needs an inference backend; none was given to the algorithm');
  return inference;
}

function outputOf(frames: FrameLayout, { probabilities, markerFrames }: { probabilities: number[]; markerFrames: number }): BalloonInflationOutput {
  const events = eventsFromProbabilities(probabilities, frames.frameTimeMs);
  return { inflationDetected: events.length > 0, events, frames: frames.frameCount, frameTimeMs: frames.frameTimeMs, markerFrames };
}

/** Balloon inflation events in an angioplasty run, from the shipped ONNX model. */
export const balloonInflation = defineAlgorithm<BalloonInflationOutput>({
  async run(input, { signal, inference }) {
    return outputOf(input.frames, await inflationProbabilities(input, needInference(inference), shippedModel(), signal));
  },
  // Each batch is reduced to its marker patches as it arrives; the model runs once, on the patches.
  async runStream({ header, frames, batches }, { signal, inference }) {
    const backend = needInference(inference);
    const preparer = new RunPreparer(frames, header.windowCenter, header.windowWidth);
    for await (const batch of batches) preparer.add(batchStack(frames, batch), signal);
    return outputOf(frames, await probabilitiesOf(preparer.finish(), backend, shippedModel(), signal));
  },
});
