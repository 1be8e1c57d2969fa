export {
  BalloonRunOptions,
  InflationPhases,
  ContrastInjection,
  TablePan,
  DEFAULT_BALLOON_RUN,
  normaliseBalloonRun,
  type BalloonRunInput,
} from './options.js';
export { renderBalloonRun, type RenderedRun, type BalloonRunTruth, type FrameTruth } from './render.js';
export { synthesizeBalloonRun, type SynthesizedBalloonRun } from './dicom.js';
export { sampleBalloonRun, TRAIN_PROFILE, EVAL_PROFILE, STRESS_PROFILE, RUN_KINDS, type RunKind, type SampleProfile, type SampleOptions } from './sample.js';
export { balloonState, contrastLevel, inflationEvents, type BalloonPhase } from './timeline.js';
export type { Point } from './geometry.js';
