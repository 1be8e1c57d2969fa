import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestV1, encodePayload, requestId, type AlgorithmRef, type ResultV1 } from '@arteria/protocol';
import { Ingest } from '@arteria/ingest';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-stale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHA = 'c'.repeat(64);
const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };

function request(instanceUid: string): RequestV1 {
  const algorithm = 'echo@^1';
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant: 'acme', device: 'dev1', instanceUid, sha256: SHA, algorithm, inputUris: [`s3://runs/acme/dev1/${instanceUid}.dcm`] }),
    tenant: 'acme',
    device: 'dev1',
    algorithm,
    instanceUid,
    inputs: [{ uri: `s3://runs/acme/dev1/${instanceUid}.dcm`, size: 10, sha256: SHA, contentType: 'application/dicom' }],
    timings: { published: 1_000 },
  });
}

/**
 * A completed request's copies: one that reached ingest before the result was recorded
 * (it waited out a queue outage, or sat in a broker session), just after it (it crossed
 * the result), or while the task is still unsettled (its worker has yet to publish) is
 * not answered again; one that arrives later (the device asking again) is answered from
 * the ledger.
 */
describe('ingest and copies of a completed request', () => {
  it('answers the device asking again, not a copy that predates the result', async () => {
    const ledger = new SqliteRequestLedger({ path: join(dir, 'ledger.db') });
    const queue = new SqliteWorkQueue({ path: join(dir, 'queue.db'), maxDeliveries: 3 });
    const results = new KeptResults();
    const ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) }, answerResendAfterMs: 1_000 });
    try {
      const req = request('1.2.3.4');
      const topic = { tenant: 'acme', device: 'dev1', kind: 'requests' as const };
      const payload = encodePayload(req);
      expect(await ingest.handle(topic, payload, { receivedAt: Date.now() })).toEqual({ status: 'accepted', requestId: req.id });
      const stale = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const result: ResultV1 = { v: 1, requestId: req.id, tenant: 'acme', device: 'dev1', status: 'ok', algorithm: REF, output: { n: 1 }, timings: { published: 1_000, resultPublished: Date.now() } };
      await ledger.recordResult(result);

      expect(await ingest.handle(topic, payload, { receivedAt: stale })).toMatchObject({ status: 'duplicate', completed: true, answered: false });
      // A resend that crossed the result (sent before it arrived): the result is on its way.
      expect(await ingest.handle(topic, payload, { receivedAt: Date.now() })).toMatchObject({ status: 'duplicate', completed: true, answered: false });
      expect(results.published).toEqual([]);

      // Recorded, but the task is not settled yet (its worker is waiting out a queue
      // outage before it publishes): however late the copy, the worker's publish is the answer.
      expect(await ingest.handle(topic, payload, { receivedAt: Date.now() + 60_000 })).toMatchObject({ status: 'duplicate', completed: true, answered: false });
      expect(results.published).toEqual([]);
      // The worker published and acked the task.
      const [lease] = await queue.lease({ max: 1, visibilityMs: 30_000, waitMs: 0 });
      if (lease === undefined) throw new Error('the task was not in the queue');
      await queue.ack(lease);

      // Published late (an outage held the worker between record and publish): a copy sent
      // before the publish, however long after the record, crossed it.
      const publishedAt = Date.now() + 5_000;
      await ledger.markPublished(req.id, publishedAt);
      expect(await ingest.handle(topic, payload, { receivedAt: publishedAt - 1 })).toMatchObject({ status: 'duplicate', completed: true, answered: false });
      expect(results.published).toEqual([]);

      expect(await ingest.handle(topic, payload, { receivedAt: publishedAt + 1_000 })).toMatchObject({ status: 'duplicate', completed: true, answered: true });
      // The ledger stamps the digest its chain record commits to.
      expect(results.published).toEqual([{ ...result, recordHash: expect.stringMatching(/^sha256:/) as unknown }]);
      // Without a receipt time (a transport that does not know it) the resend is answered.
      await ingest.handle(topic, payload);
      expect(results.published).toHaveLength(2);
    } finally {
      await ledger.close();
      await queue.close();
    }
  });
});
