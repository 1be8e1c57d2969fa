import { createSqsServer } from 'local-aws-sqs';

// Runs the SQS-API server in its own process (like nats-server), so that tests and
// benchmarks do not share an event loop with it. Port from argv; "ready" over IPC.
const port = Number(process.argv[2]);
// Queues are usable at once, and a deleted name can be created again at once.
await createSqsServer({ port, hostname: '127.0.0.1', emulateQueueCreationLifecycle: false, emulateLazyQueues: false });
process.send?.('ready');
process.on('disconnect', () => process.exit(0));
