export * from './queue/sqs-queue-options.js';
export * from './queue/sqs-queue.js';
