import { balloonInflation } from './algorithm.js';

export default balloonInflation;
export { balloonInflation, inflationProbabilities, type BalloonInflationOutput } from './algorithm.js';
export { prepareRun, RunPreparer, type PreparedRun } from './preprocess.js';
export { workingImage, windowFor, binFactor, WORKING_SIZE, type WorkingImage, type Window } from './working-image.js';
export { findMarkers, MIN_MARKER_RESPONSE, type MarkerPair, type MarkerPoint } from './markers.js';
export { extractPatch, PATCH_ROWS, PATCH_COLUMNS } from './patch.js';
export { eventsFromProbabilities, INFLATED_THRESHOLD, type InflationEvent } from './postprocess.js';
export { shippedModel, MODEL_INPUT, MODEL_OUTPUT } from './model.js';
