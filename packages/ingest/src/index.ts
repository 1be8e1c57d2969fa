export * from './admission.js';
export * from './canary-guard.js';
export * from './dlq/dead-letter-desk.js';
export * from './entitlements.js';
export * from './ingest.js';
export * from './rate-limit.js';
export * from './refusal-log.js';
export * from './plane.js';
