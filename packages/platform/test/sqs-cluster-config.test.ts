// The cluster configuration selects the SQS engine (queue.kind: sqs); the adapter itself
// runs the WorkQueue conformance suite in packages/engine-sqs/test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TestSqsServer, leaseOne } from '@arteria/testing';
import { openSharedStores } from '../src/cluster/stores.js';
import { parseClusterConfig } from '../src/cluster/cluster-config.js';

const server = await TestSqsServer.start();
const dir = mkdtempSync(join(tmpdir(), 'arteria-sqs-cluster-'));

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster configuration with queue.kind sqs', () => {
  it('is selected by queue.kind sqs in the cluster configuration, its records in the deployment\'s SQLite file', async () => {
    const config = parseClusterConfig({
      dataDir: join(dir, 'cluster'),
      queue: { kind: 'sqs', sqsEndpoint: server.endpoint, sqsName: 'cluster-tasks', sqsAccessKeyId: 'test', sqsSecretAccessKey: 'test', maxDeliveries: 3 },
    });
    const stores = await openSharedStores(config);
    try {
      expect(stores.queue.kind).toBe('sqs');
      expect((await stores.queue.enqueue(Buffer.from('x'), { dedupeId: 'cluster' })).enqueued).toBe(true);
      const lease = await leaseOne(stores.queue);
      await stores.queue.ack(lease);
      expect(await stores.queue.pending('cluster')).toBe(false);
    } finally {
      await stores.close();
    }
  });
});
