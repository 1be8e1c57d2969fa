export * from './ledger/sqlite-ledger.js';
export * from './queue/sqlite-database.js';
export * from './queue/sqlite-queue.js';
export * from './roster/sqlite-roster.js';
export * from './checkpoints/sqlite-run-checkpoints.js';
export * from './lock/data-dir-lock.js';
