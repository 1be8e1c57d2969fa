import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodePayload, epochNow, type AlgorithmRef, type RequestV1, type ResultV1 } from '@arteria/protocol';
import { DeadLetterDesk, Ingest, type AlgorithmResolver } from '@arteria/ingest';
import { NatsRequestLedger, NatsWorkQueue } from '@arteria/engine-nats';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import type { RequestLedger, WorkQueue } from '@arteria/ports';
import { TestNatsServer, testRequest } from '@arteria/testing';
import { runWorkerDry } from './support/dry-worker.js';
import { KeptResults } from './support/kept-results.js';

/**
 * A dead-letter replay racing the late completion of the task it replays: the last
 * delivery's worker, stalled past its lease, records its result after the operator
 * replayed the letter. Its lease is gone, so it does not publish (the replay's worker
 * does). A device's resend arriving meanwhile must not be answered from the ledger as
 * well: the device would get the result twice.
 */
const dir = mkdtempSync(join(tmpdir(), 'arteria-replay-race-'));
const nats = await TestNatsServer.start();
afterAll(async () => {
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
});

const SHA = 'c'.repeat(64);
const RELEASE: AlgorithmRef = { name: 'echo', version: '1.0.1', digest: `sha256:${'e'.repeat(64)}` };
const TOPIC = { tenant: 'acme', device: 'dev1', kind: 'requests' as const };
const releases: AlgorithmResolver = { resolve: () => ({ ref: RELEASE }) };

const request = (instanceUid: string): RequestV1 => testRequest(instanceUid, { tenant: 'acme', device: 'dev1', algorithm: 'echo@^1', sha256: SHA, size: 10, timings: { published: 1_000 } });

let n = 0;
const engines: { name: string; open: () => Promise<{ queue: WorkQueue; ledger: RequestLedger }> }[] = [
  {
    name: 'SQLite',
    open: () => Promise.resolve({ queue: new SqliteWorkQueue({ path: join(dir, `queue-${++n}.db`), maxDeliveries: 2 }), ledger: new SqliteRequestLedger({ path: join(dir, `ledger-${n}.db`) }) }),
  },
  {
    name: 'NATS JetStream',
    open: async () => ({
      queue: await NatsWorkQueue.open({ servers: nats.url, name: `RACE${++n}`, maxDeliveries: 2, pollIntervalMs: 20 }),
      ledger: await NatsRequestLedger.open({ servers: [nats.url], stream: `RACE_LEDGER_${n}` }),
    }),
  },
];

describe.each(engines)('dead-letter replay racing a late completion on $name', ({ open }) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('the device gets the result once: a resend is not answered while the replayed task is pending', async () => {
    const { queue, ledger } = await open();
    cleanups.push(() => queue.close(), () => ledger.close());
    const results = new KeptResults();
    const ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: releases });
    const desk = new DeadLetterDesk({ queues: new Map([['cpu', queue]]), ledger, admission: { algorithms: releases, bucket: 'runs' } });
    const req = request('1.2.9');
    expect(await ingest.handle(TOPIC, encodePayload(req))).toMatchObject({ status: 'accepted' });

    // Both deliveries' leases run out (the last one's worker stalls): dead-lettered.
    for (;;) {
      const [lease] = await queue.lease({ max: 1, visibilityMs: 50, waitMs: 1_000 });
      if (lease === undefined) break;
    }
    const [letter] = await queue.deadLetters(1);
    expect(await desk.replay(letter!.taskId)).toMatchObject({ status: 'replayed' });

    // The stalled worker wakes and records its result; its lease is gone, so it does not publish.
    const late: ResultV1 = { v: 1, requestId: req.id, tenant: 'acme', device: 'dev1', status: 'ok', algorithm: RELEASE, output: { from: 'late original' }, timings: { published: 1_000 } };
    await ledger.recordResult(late);

    // The device resends; this copy reaches the platform well after the result was recorded.
    const resent = await ingest.handle(TOPIC, encodePayload(req), { receivedAt: epochNow() + 11_000 });
    expect(resent).toMatchObject({ status: 'duplicate', completed: true, answered: false });
    expect(results.published).toEqual([]);

    // The replayed task's worker finds the recorded result, never published: it publishes it, once.
    const computed: string[] = [];
    await runWorkerDry({ queue, ledger, results }, () => {
      computed.push('replay');
      return Promise.resolve({ output: { from: 'replay' } });
    });
    expect(computed).toEqual([]);
    expect(results.published.map((r) => [r.requestId, r.output])).toEqual([[req.id, { from: 'late original' }]]);

    // Once the replay is settled, a device that really missed the result gets it on its next resend.
    const asked = await ingest.handle(TOPIC, encodePayload(req), { receivedAt: epochNow() + 11_000 });
    expect(asked).toMatchObject({ status: 'duplicate', completed: true, answered: true });
  });
});
