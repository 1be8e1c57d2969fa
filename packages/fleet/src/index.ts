export { SimulatedFleet, type FleetStats, type FleetEvents } from './fleet.js';
export { FleetOptions, parseFleetOptions, type FleetOptionsInput } from './options.js';
export { ProcedureModel, type ProcedureProfile, type DeviceEvent } from './procedure-model.js';
export { SimulatedDevice, type DeviceSink } from './simulated-device.js';
export { LatencyWindow } from './latency-window.js';
export { RunFactory } from './run-factory.js';
export { renderRun, type RunRecipe } from './run-recipe.js';
