import { ArteriaError } from '@arteria/protocol';
import { assertNextSegment, batchStack, defineAlgorithm, type FrameLayout, type FrameStack, type IncrementalAlgorithm, type InferenceBackend, type ModelRef, type RunInput, type StreamLayout } from '@arteria/sdk';
import { MODEL_INPUT, MODEL_OUTPUT, shippedModel } from './model.js';
import { balloonStatusOf, inflationCandidates, settledEvents, VISIBLE_THRESHOLD, type BalloonStatus, type InflationEvent, type WeakCandidate } from './postprocess.js';
import { CHANNELS, FRAME_INPUT, SIDE, addFrames, endInput, inputState, type InputState } from './preprocess.js';

export interface BalloonInflationOutput {
  inflationDetected: boolean;
  /** 'not-visible': no balloon seen; 'visible': a balloon seen but never inflated; 'inflated': at least one event. */
  balloon: BalloonStatus;
  events: InflationEvent[];
  frames: number;
  frameTimeMs: number;
  /** Frames where the model sees a balloon (probability >= 0.5). */
  balloonFrames: number;
  /** Highest per-frame probability of an inflated balloon in the run. */
  peakInflatedProbability: number;
  /** Frames that looked inflated (smoothed probability >= 0.5) but never reached the event threshold: not reported, shown for review. */
  weakCandidates: WeakCandidate[];
}

export interface FrameProbabilities {
  /** Per frame: probability that a balloon is visible. */
  visible: number[];
  /** Per frame: probability that a balloon is inflated. */
  inflated: number[];
}

/** The output lists at most this many weak candidates (the schema's bound). */
const MAX_WEAK_CANDIDATES = 100;
/** Frames per inference call: the model works frame by frame, so chunks bound memory without changing the answer. */
const CHUNK_FRAMES = 64;

/** Per-frame probabilities of a run from the shipped model. */
export async function frameProbabilities(input: RunInput, inference: InferenceBackend, model: ModelRef, signal?: AbortSignal): Promise<FrameProbabilities> {
  const state = inputState(input.frames.photometric);
  const probabilities: FrameProbabilities = { visible: [], inflated: [] };
  const plane = input.frames.rows * input.frames.columns;
  for (let first = 0; first < input.frames.frameCount; first += CHUNK_FRAMES) {
    const count = Math.min(CHUNK_FRAMES, input.frames.frameCount - first);
    const chunk: FrameStack = { ...input.frames, frameCount: count, pixels: input.frames.pixels.subarray(first * plane, (first + count) * plane) };
    await addProbabilities(probabilities, addFrames(state, chunk, signal), inference, model, signal);
  }
  await addProbabilities(probabilities, endInput(state), inference, model, signal);
  return probabilities;
}

/** The model's probabilities for the frames of `tensor` ([m, CHANNELS, SIDE, SIDE]), appended to `into`. */
async function addProbabilities(into: FrameProbabilities, tensor: Float32Array, inference: InferenceBackend, model: ModelRef, signal?: AbortSignal): Promise<void> {
  const frames = tensor.length / FRAME_INPUT;
  for (let first = 0; first < frames; first += CHUNK_FRAMES) {
    const n = Math.min(CHUNK_FRAMES, frames - first);
    const data = tensor.subarray(first * FRAME_INPUT, (first + n) * FRAME_INPUT);
    const outputs = await inference.infer(model, [{ name: MODEL_INPUT, type: 'float32', dims: [n, CHANNELS, SIDE, SIDE], data }], signal);
    const output = outputs.find((t) => t.name === MODEL_OUTPUT) ?? outputs[0];
    if (output === undefined || !(output.data instanceof Float32Array) || output.data.length !== 2 * n) {
      throw new ArteriaError('INFERENCE_FAILED', `the model returned no ${MODEL_OUTPUT} tensor of ${n}x2 probabilities`);
    }
    for (let i = 0; i < n; i++) {
      into.visible.push(output.data[2 * i]!);
      into.inflated.push(output.data[2 * i + 1]!);
    }
  }
}

function needInference(inference: InferenceBackend | undefined): InferenceBackend {
  if (inference === undefined) throw new ArteriaError('MODEL_UNAVAILABLE', 'balloon-inflation needs an inference backend; none was given to the algorithm');
  return inference;
}

function outputOf(frames: FrameLayout, { visible, inflated }: FrameProbabilities): BalloonInflationOutput {
  const { events, weak } = inflationCandidates(inflated, frames.frameTimeMs);
  const balloonFrames = visible.filter((p) => p >= VISIBLE_THRESHOLD).length;
  const peak = inflated.reduce((m, p) => Math.max(m, p), 0);
  return {
    inflationDetected: events.length > 0,
    balloon: balloonStatusOf(events, balloonFrames),
    events,
    frames: frames.frameCount,
    frameTimeMs: frames.frameTimeMs,
    balloonFrames,
    peakInflatedProbability: Math.round(peak * 1000) / 1000,
    weakCandidates: weak.slice(0, MAX_WEAK_CANDIDATES),
  };
}

/**
 * A run while it is acquired. The model's input for a frame needs only the run's first
 * REFERENCE_FRAMES frames (statistics and reference) and the frames just before it, so the
 * model runs on each segment as it arrives: the state holds the pre-processing's
 * (`InputState`: the first frames' box means until the reference is settled, then the
 * reference and the last two frames, about 200 KiB) and two probabilities per frame.
 * An inflation is reported (a partial event, key `inflation-<first frame>`) as soon as the
 * frames after it fix it (`settledEvents`: a few frames after it ends); `finish` only runs
 * the model on a run shorter than REFERENCE_FRAMES frames and turns the probabilities into
 * the output, whose events include every partial one unchanged.
 */
export interface BalloonState {
  layout: StreamLayout;
  seen: number;
  input: InputState;
  probabilities: FrameProbabilities;
  /** Events already reported as partial events. */
  reported: number;
}

export const balloonIncremental: IncrementalAlgorithm<BalloonState, BalloonInflationOutput> = {
  // The state keeps box means and model inputs computed from the pixels (addFrames), never a view of them.
  borrowsFrames: true,
  createState({ layout }) {
    return { layout, seen: 0, input: inputState(layout.photometric), probabilities: { visible: [], inflated: [] }, reported: 0 };
  },
  async onFrames(state, { firstFrame, frames }, { signal, inference }) {
    assertNextSegment(state.seen, { firstFrame, frames });
    const backend = needInference(inference);
    const tensor = addFrames(state.input, frames, signal);
    state.seen += frames.frameCount;
    await addProbabilities(state.probabilities, tensor, backend, shippedModel(), signal);
    const settled = settledEvents(state.probabilities.inflated, state.layout.frameTimeMs).slice(state.reported);
    state.reported += settled.length;
    return settled.map((event) => ({ key: `inflation-${event.startFrame}`, frame: event.startFrame, ...event }));
  },
  async finish(state, { signal, inference }) {
    const backend = needInference(inference);
    if (state.seen < 1) throw new ArteriaError('ALGORITHM_FAILED', 'balloon-inflation needs at least one frame, the run ended with none');
    await addProbabilities(state.probabilities, endInput(state.input), backend, shippedModel(), signal);
    return outputOf({ ...state.layout, frameCount: state.seen }, state.probabilities);
  },
};

/** Balloon inflation events in an angioplasty run, from the shipped ONNX model. */
export const balloonInflation = defineAlgorithm<BalloonInflationOutput>({
  async run(input, { signal, inference }) {
    return outputOf(input.frames, await frameProbabilities(input, needInference(inference), shippedModel(), signal));
  },
  // Each batch becomes model input as it arrives (after the first REFERENCE_FRAMES frames) and goes through the model.
  async runStream({ frames, batches }, { signal, inference }) {
    const backend = needInference(inference);
    const model = shippedModel();
    const state = inputState(frames.photometric);
    const probabilities: FrameProbabilities = { visible: [], inflated: [] };
    for await (const batch of batches) await addProbabilities(probabilities, addFrames(state, batchStack(frames, batch), signal), backend, model, signal);
    await addProbabilities(probabilities, endInput(state), backend, model, signal);
    if (probabilities.inflated.length !== frames.frameCount) throw new ArteriaError('ALGORITHM_FAILED', `the run ended after ${probabilities.inflated.length} of ${frames.frameCount} frames`);
    return outputOf(frames, probabilities);
  },
  incremental: balloonIncremental,
});
