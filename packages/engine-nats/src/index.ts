export * from './ingest/nats-capture-ingest.js';
export * from './ledger/nats-ledger.js';
export * from './queue/nats-auth.js';
export * from './queue/nats-queue-options.js';
export * from './queue/nats-queue.js';
export * from './roster/nats-roster.js';
export * from './checkpoints/nats-run-checkpoints.js';
