export * from './autoscaler.js';
export * from './keda-scaler.js';
export * from './kubernetes-target.js';
export * from './ledger-signal-source.js';
export * from './options.js';
export * from './signal-source.js';
export * from './plane.js';
