import { ArteriaError } from '@arteria/protocol';
import { assertNextSegment, batchStack, defineAlgorithm, type FrameLayout, type IncrementalAlgorithm, type InferenceBackend, type ModelRef, type RunInput, type StreamLayout } from '@arteria/sdk';
import { MODEL_INPUT, MODEL_OUTPUT, shippedModel } from './model.js';
import { balloonStatusOf, inflationCandidates, VISIBLE_THRESHOLD, type BalloonStatus, type InflationEvent, type WeakCandidate } from './postprocess.js';
import { FrameBoxes, RunPreparer, SIDE, PLANE as BOX_PLANE, prepareRun, preparedFrom, type PreparedRun } from './preprocess.js';

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
const PLANE = 2 * SIDE * SIDE;

/** Per-frame probabilities of a run from the shipped model. */
export async function frameProbabilities(input: RunInput, inference: InferenceBackend, model: ModelRef, signal?: AbortSignal): Promise<FrameProbabilities> {
  return await probabilitiesOf(prepareRun(input.frames, signal), inference, model, signal);
}

async function probabilitiesOf(prepared: PreparedRun, inference: InferenceBackend, model: ModelRef, signal?: AbortSignal): Promise<FrameProbabilities> {
  const visible: number[] = [];
  const inflated: number[] = [];
  for (let first = 0; first < prepared.frameCount; first += CHUNK_FRAMES) {
    const n = Math.min(CHUNK_FRAMES, prepared.frameCount - first);
    const data = prepared.tensor.subarray(first * PLANE, (first + n) * PLANE);
    const outputs = await inference.infer(model, [{ name: MODEL_INPUT, type: 'float32', dims: [n, 2, SIDE, SIDE], data }], signal);
    const output = outputs.find((t) => t.name === MODEL_OUTPUT) ?? outputs[0];
    if (output === undefined || !(output.data instanceof Float32Array) || output.data.length !== 2 * n) {
      throw new ArteriaError('INFERENCE_FAILED', `the model returned no ${MODEL_OUTPUT} tensor of ${n}x2 probabilities`);
    }
    for (let i = 0; i < n; i++) {
      visible.push(output.data[2 * i]!);
      inflated.push(output.data[2 * i + 1]!);
    }
  }
  return { visible, inflated };
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
 * A run while it is acquired: each segment's frames are reduced to box means as they
 * arrive (64 KiB a frame, one array per segment); the model needs the whole run's
 * statistics (its mean frame, each box's temporal median), so it runs in `finish`, and no
 * event is certain, nor reported, before the run ends.
 */
export interface BalloonState {
  layout: StreamLayout;
  sign: number;
  seen: number;
  /** Box means of each segment's frames, frame-major. */
  segments: Float32Array[];
  /** Sum of every frame's box means. */
  meanSum: Float64Array;
}

export const balloonIncremental: IncrementalAlgorithm<BalloonState, BalloonInflationOutput> = {
  createState({ layout }) {
    return { layout, sign: layout.photometric === 'MONOCHROME1' ? -1 : 1, seen: 0, segments: [], meanSum: new Float64Array(BOX_PLANE) };
  },
  onFrames(state, { firstFrame, frames }, { signal }) {
    assertNextSegment(state.seen, { firstFrame, frames });
    const boxes = new FrameBoxes(frames);
    const small = new Float32Array(frames.frameCount * BOX_PLANE);
    for (let i = 0; i < frames.frameCount; i++) {
      signal.throwIfAborted();
      boxes.reduce(frames, i, state.sign, small.subarray(i * BOX_PLANE, (i + 1) * BOX_PLANE), state.meanSum);
    }
    state.segments.push(small);
    state.seen += frames.frameCount;
    return [];
  },
  async finish(state, { signal, inference }) {
    const backend = needInference(inference);
    const layout: FrameLayout = { ...state.layout, frameCount: state.seen };
    if (state.seen < 1) throw new ArteriaError('ALGORITHM_FAILED', 'balloon-inflation needs at least one frame, the run ended with none');
    const all = new Float32Array(state.seen * BOX_PLANE);
    let at = 0;
    for (const small of state.segments) {
      all.set(small, at);
      at += small.length;
    }
    const prepared = preparedFrom(state.seen, (f) => all.subarray(f * BOX_PLANE, (f + 1) * BOX_PLANE), state.meanSum, signal);
    return outputOf(layout, await probabilitiesOf(prepared, backend, shippedModel(), signal));
  },
};

/** Balloon inflation events in an angioplasty run, from the shipped ONNX model. */
export const balloonInflation = defineAlgorithm<BalloonInflationOutput>({
  async run(input, { signal, inference }) {
    return outputOf(input.frames, await frameProbabilities(input, needInference(inference), shippedModel(), signal));
  },
  // Each batch is reduced to SIDE x SIDE box means as it arrives; the model runs on the whole run at the end.
  async runStream({ frames, batches }, { signal, inference }) {
    const backend = needInference(inference);
    const preparer = new RunPreparer(frames);
    for await (const batch of batches) preparer.add(batchStack(frames, batch), signal);
    return outputOf(frames, await probabilitiesOf(preparer.finish(signal), backend, shippedModel(), signal));
  },
  incremental: balloonIncremental,
});
