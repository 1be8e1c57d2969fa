import { balloonInflation } from './algorithm.js';

export default balloonInflation;
export { balloonInflation, balloonIncremental, frameProbabilities, type BalloonState, type BalloonInflationOutput, type FrameProbabilities } from './algorithm.js';
export { prepareRun, addFrames, endInput, inputState, runStatistics, selectInPlace, boxEdges, SIDE, CLIP, CHANNELS, REFERENCE_FRAMES, MEAN_FRAMES, type InputState, type PreparedRun, type RunStatistics } from './preprocess.js';
export { eventsFromProbabilities, inflationCandidates, settledEvents, balloonStatusOf, EVENT_RULE, type EventRule, INFLATED_THRESHOLD, EVENT_PEAK_THRESHOLD, MEDIAN_FRAMES, VISIBLE_THRESHOLD, MIN_BALLOON_FRAMES, type InflationEvent, type WeakCandidate, type BalloonStatus } from './postprocess.js';
export { shippedModel, MODEL_INPUT, MODEL_OUTPUT } from './model.js';
