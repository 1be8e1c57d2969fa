import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestV1, requestId, type AlgorithmRef, type ResultV1 } from '@arteria/protocol';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { Worker } from '@arteria/worker';
import { encodeTask, type InputSource } from '@arteria/ports';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-redelivery-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const SHA = 'e'.repeat(64);

/** Nothing here may be fetched or computed: a recorded result is never computed again. */
const noInputs: InputSource = {
  fetch: () => Promise.reject(new Error('fetched a recorded task')),
  stream: () => {
    throw new Error('fetched a recorded task');
  },
};

function request(instanceUid: string): RequestV1 {
  const uri = `s3://runs/acme/dev1/${instanceUid}.dcm`;
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant: 'acme', device: 'dev1', instanceUid, sha256: SHA, algorithm: 'echo@^1', inputUris: [uri] }),
    tenant: 'acme',
    device: 'dev1',
    algorithm: 'echo@^1',
    instanceUid,
    inputs: [{ uri, size: 10, sha256: SHA, contentType: 'application/dicom' }],
    timings: { published: 1_000 },
  });
}

const resultOf = (r: RequestV1): ResultV1 => ({ v: 1, requestId: r.id, tenant: 'acme', device: 'dev1', status: 'ok', algorithm: REF, output: { n: 1 }, timings: { published: 1_000, resultPublished: 2_000 } });

/**
 * A task delivered again after its result was recorded (its ack was lost in a queue
 * restart, or its worker died): published already, it is only acknowledged; never
 * published, it is published now. Neither is computed again, however long the outage.
 */
describe('worker and a task delivered again after its result was recorded', () => {
  it('acknowledges a published one without publishing, publishes an unpublished one once', async () => {
    const queue = new SqliteWorkQueue({ path: join(dir, 'queue.db'), maxDeliveries: 3 });
    const ledger = new SqliteRequestLedger({ path: join(dir, 'ledger.db') });
    const results = new KeptResults();
    const published = request('1.1');
    const unpublished = request('1.2');
    for (const r of [published, unpublished]) {
      await ledger.recordAccepted({ requestId: r.id, tenant: 'acme', device: 'dev1', algorithm: r.algorithm, acceptedAt: 1_000, request: r });
      await ledger.recordResult(resultOf(r));
      await queue.enqueue(encodeTask({ v: 1, request: r, algorithm: REF }), { dedupeId: r.id });
    }
    await ledger.markPublished(published.id, 2_000);
    const errors: Error[] = [];
    const worker = new Worker(
      { queue, ledger, results, inputs: noInputs, executor: { execute: () => Promise.reject(new Error('computed a recorded task')) }, onError: (e) => errors.push(e) },
      { visibilityMs: 30_000, leaseWaitMs: 50, maxInputBytes: 1 << 20, maxDeliveries: 3 },
    );
    try {
      worker.start();
      for (let i = 0; i < 200 && ((await queue.pending(published.id)) || (await queue.pending(unpublished.id))); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(await queue.pending(published.id)).toBe(false);
      expect(await queue.pending(unpublished.id)).toBe(false);
      expect(results.published.map((r) => r.requestId)).toEqual([unpublished.id]);
      expect((await ledger.get(unpublished.id))?.publishedAt).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    } finally {
      await worker.drain();
      await queue.close();
      await ledger.close();
    }
  });
});
