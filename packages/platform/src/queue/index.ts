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
export { NatsWorkQueue } from './nats-queue.js';
export { NatsAuth, natsConnectAuth, natsConnectError, readNatsAuth } from './nats-auth.js';
export {
  NatsWorkQueueOptions,
  compileNatsWorkQueueOptions,
  type NatsWorkQueueConfig,
} from './nats-queue-options.js';
export { SqsWorkQueue } from './sqs-queue.js';
export {
  SqsWorkQueueOptions,
  compileSqsWorkQueueOptions,
  type SqsWorkQueueConfig,
} from './sqs-queue-options.js';
