export type {
  WorkQueue,
  WorkQueueOptions,
  EnqueueOptions,
  EnqueueResult,
  Lease,
  LeaseOptions,
  QueueStats,
  DeadLetter,
} from './work-queue.js';
export { SqliteWorkQueue } from './sqlite-queue.js';
export {
  SqliteWorkQueueOptions,
  compileSqliteWorkQueueOptions,
  type SqliteWorkQueueConfig,
} from './sqlite-queue-options.js';
export type { SqliteSynchronous } from './sqlite-database.js';
