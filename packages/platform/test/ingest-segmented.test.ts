import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodePayload, runDigest, segmentedRunId, MAX_SEGMENT_BYTES, MAX_SEGMENTED_HEADER_BYTES, SEGMENT_CONTENT_TYPE, type AlgorithmRef, type RunEndV1, type RunOpenV1, type SegmentV1 } from '@arteria/protocol';
import { Ingest, OpenRunLimit } from '@arteria/ingest';
import { decodeTask } from '@arteria/ports';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-segmented-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REF: AlgorithmRef = { name: 'contrast-injection', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const topic = { tenant: 'acme', device: 'dev1', kind: 'requests' as const };
const sha = (c: string): string => c.repeat(64);

function open(instanceUid = '1.2.3'): RunOpenV1 {
  const header = { uri: `s3://runs/acme/dev1/${instanceUid}/header`, size: 2000, sha256: sha('a'), contentType: 'application/dicom' as const };
  const algorithm = 'contrast-injection@^1';
  const id = segmentedRunId({ tenant: 'acme', device: 'dev1', instanceUid, algorithm, headerUri: header.uri, headerSha256: header.sha256 });
  return { v: 1, kind: 'run-open', id, tenant: 'acme', device: 'dev1', algorithm, instanceUid, header, priority: 'clinical', timings: { acquired: 1 } };
}

function segment(run: RunOpenV1, index: number, overrides: Partial<SegmentV1> = {}): SegmentV1 {
  return {
    v: 1,
    kind: 'segment',
    requestId: run.id,
    tenant: 'acme',
    device: 'dev1',
    index,
    firstFrame: index * 4,
    frameCount: 4,
    object: { uri: `s3://runs/acme/dev1/${run.instanceUid}/s${index}`, size: 4096, sha256: sha(String(index)), contentType: SEGMENT_CONTENT_TYPE },
    ...overrides,
  };
}

/**
 * Admission of runs sent while they are acquired: the run opens like a request (identity,
 * prefix, algorithm, ledger), each segment and the end are queued as steps of the run once
 * (deduplicated per index), and each refusal is typed and goes to the sender.
 */
describe('ingest of segmented runs', () => {
  let ledger: SqliteRequestLedger;
  let queue: SqliteWorkQueue;
  let results: KeptResults;
  let ingest: Ingest;
  let n = 0;
  beforeEach(() => {
    n++;
    ledger = new SqliteRequestLedger({ path: join(dir, `ledger-${n}.db`) });
    queue = new SqliteWorkQueue({ path: join(dir, `queue-${n}.db`), maxDeliveries: 3 });
    results = new KeptResults();
    ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) } });
  });
  afterEach(async () => {
    await ledger.close();
    await queue.close();
  });

  async function queued(): Promise<{ dedupeId: string; phase: string | undefined }[]> {
    const leases = await queue.lease({ max: 100, visibilityMs: 30_000, waitMs: 0 });
    return leases.map((lease) => ({ dedupeId: lease.dedupeId, phase: decodeTask(lease.payload).segmented?.phase })).sort((a, b) => a.dedupeId.localeCompare(b.dedupeId));
  }

  it('opens a run, queues each segment once and the end, in the ledger under the run id', async () => {
    const run = open();
    expect(await ingest.handle(topic, encodePayload(run))).toEqual({ status: 'accepted', requestId: run.id });
    expect(await ingest.handle(topic, encodePayload(run))).toMatchObject({ status: 'duplicate', requestId: run.id });
    expect(await ingest.handle(topic, encodePayload(segment(run, 0)))).toEqual({ status: 'accepted', requestId: run.id });
    expect(await ingest.handle(topic, encodePayload(segment(run, 0)))).toMatchObject({ status: 'duplicate', completed: false });
    expect(await ingest.handle(topic, encodePayload(segment(run, 1)))).toEqual({ status: 'accepted', requestId: run.id });
    const end: RunEndV1 = { v: 1, kind: 'run-end', requestId: run.id, tenant: 'acme', device: 'dev1', segments: 2, frames: 8, digest: runDigest(sha('a'), [sha('0'), sha('1')]) };
    expect(await ingest.handle(topic, encodePayload(end))).toEqual({ status: 'accepted', requestId: run.id });
    expect(await queued()).toEqual([
      { dedupeId: run.id, phase: 'open' },
      { dedupeId: `${run.id}.end`, phase: 'end' },
      { dedupeId: `${run.id}.s0`, phase: 'segment' },
      { dedupeId: `${run.id}.s1`, phase: 'segment' },
    ]);
    const entry = await ledger.get(run.id);
    expect(entry).toMatchObject({ state: 'accepted', tenant: 'acme', device: 'dev1', request: { inputs: [run.header] } });
    expect(results.published).toEqual([]);
  });

  it('refuses a run-open whose id does not match what it names, or that speaks for another device', async () => {
    const run = open();
    expect(await ingest.handle(topic, encodePayload({ ...run, instanceUid: '9.9' }))).toMatchObject({ status: 'rejected', code: 'INVALID_REQUEST' });
    expect(await ingest.handle({ ...topic, device: 'dev2' }, encodePayload(run))).toMatchObject({ status: 'rejected', code: 'NOT_AUTHORIZED' });
    const elsewhere = { ...run, header: { ...run.header, uri: 's3://runs/acme/dev2/1.2.3/header' } };
    expect(await ingest.handle(topic, encodePayload(elsewhere))).toMatchObject({ status: 'rejected', code: 'NOT_AUTHORIZED' });
    expect(results.published.map((r) => r.error?.code)).toEqual(['INVALID_REQUEST', 'NOT_AUTHORIZED', 'NOT_AUTHORIZED']);
    expect(await queued()).toEqual([]);
  });

  it('names the field of a malformed segment', async () => {
    const run = open();
    await ingest.handle(topic, encodePayload(run));
    const bad = { ...segment(run, 0), frameCount: 0 };
    expect(await ingest.handle(topic, encodePayload(bad))).toMatchObject({ status: 'rejected', code: 'INVALID_REQUEST' });
    expect(results.published.at(-1)?.error?.message).toMatch(/^frameCount: /);
  });

  it('refuses a segment of a run never opened, or opened by another device, unrecorded', async () => {
    const run = open();
    expect(await ingest.handle(topic, encodePayload(segment(run, 0)))).toMatchObject({ status: 'rejected', code: 'RUN_NOT_OPEN' });
    const other = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) } });
    const theirs = { ...open(), tenant: 'acme', device: 'dev2' };
    const theirId = segmentedRunId({ tenant: 'acme', device: 'dev2', instanceUid: theirs.instanceUid, algorithm: theirs.algorithm, headerUri: 's3://runs/acme/dev2/1.2.3/header', headerSha256: sha('a') });
    await other.handle({ ...topic, device: 'dev2' }, encodePayload({ ...theirs, id: theirId, header: { ...theirs.header, uri: 's3://runs/acme/dev2/1.2.3/header' } }));
    expect(await ingest.handle(topic, encodePayload({ ...segment(run, 0), requestId: theirId }))).toMatchObject({ status: 'rejected', code: 'RUN_NOT_OPEN' });
    expect(await ledger.get(run.id)).toBeUndefined();
    expect((await ledger.get(theirId))?.state).toBe('accepted');
  });

  it('refuses a segment larger than a worker reads whole, and a header larger than it keeps, INPUT_TOO_LARGE', async () => {
    const run = open();
    await ingest.handle(topic, encodePayload(run));
    expect(await ingest.handle(topic, encodePayload(segment(run, 0, { object: { ...segment(run, 0).object, size: MAX_SEGMENT_BYTES } })))).toEqual({ status: 'accepted', requestId: run.id });
    const huge = segment(run, 1, { object: { ...segment(run, 1).object, size: MAX_SEGMENT_BYTES + 1 } });
    expect(await ingest.handle(topic, encodePayload(huge))).toMatchObject({ status: 'rejected', code: 'INPUT_TOO_LARGE' });
    expect(await ledger.get(run.id)).toMatchObject({ state: 'completed', result: { error: { code: 'INPUT_TOO_LARGE' } } });

    const big = open('1.2.4');
    const header = { ...big.header, size: MAX_SEGMENTED_HEADER_BYTES + 1 };
    const id = segmentedRunId({ tenant: 'acme', device: 'dev1', instanceUid: big.instanceUid, algorithm: big.algorithm, headerUri: header.uri, headerSha256: header.sha256 });
    expect(await ingest.handle(topic, encodePayload({ ...big, id, header }))).toMatchObject({ status: 'rejected', code: 'INPUT_TOO_LARGE' });
    expect(await ledger.get(id)).toBeUndefined();
  });

  it('ends the run when a segment of it is refused: the refusal is recorded as its result and the run released, and later steps are dropped', async () => {
    const run = open();
    await ingest.handle(topic, encodePayload(run));
    const outside = segment(run, 0, { object: { ...segment(run, 0).object, uri: 's3://runs/acme/dev2/1.2.3/s0' } });
    expect(await ingest.handle(topic, encodePayload(outside))).toMatchObject({ status: 'rejected', code: 'NOT_AUTHORIZED' });
    const entry = await ledger.get(run.id);
    expect(entry).toMatchObject({ state: 'completed', status: 'rejected', result: { error: { code: 'NOT_AUTHORIZED' } } });
    expect(results.published).toHaveLength(1);
    expect(results.published[0]?.recordHash).toMatch(/^sha256:/);
    // Noted as published (a step of the run leased later does not send it again), and the run's release step queued.
    expect(entry?.publishedAt).toBeDefined();
    expect(await ingest.handle(topic, encodePayload(segment(run, 1)))).toMatchObject({ status: 'duplicate', completed: true, answered: false });
    expect((await queued()).map((q) => q.phase)).toEqual(['open', 'abandon']);
  });

  it("answers a resent end of an answered run from the ledger once the resend window has passed (a device that missed the result gets it), not within it", async () => {
    const resend = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) }, answerResendAfterMs: 1_000 });
    const run = open('1.2.9');
    await resend.handle(topic, encodePayload(run));
    const end: RunEndV1 = { v: 1, kind: 'run-end', requestId: run.id, tenant: 'acme', device: 'dev1', segments: 1, frames: 4, digest: runDigest(sha('a'), [sha('0')]) };
    await resend.handle(topic, encodePayload(end));
    // The worker's result, recorded and published (the device missed it).
    await ledger.recordResult({ v: 1, requestId: run.id, tenant: 'acme', device: 'dev1', status: 'ok', algorithm: REF, output: { frames: 4 }, timings: { acquired: 1 } });
    const publishedAt = Date.now();
    await ledger.markPublished(run.id, publishedAt);

    expect(await resend.handle(topic, encodePayload(end), { receivedAt: publishedAt + 500 })).toMatchObject({ status: 'duplicate', completed: true, answered: false });
    expect(results.published).toEqual([]);
    expect(await resend.handle(topic, encodePayload(end), { receivedAt: publishedAt + 1_500 })).toMatchObject({ status: 'duplicate', completed: true, answered: true });
    expect(results.published).toHaveLength(1);
    expect(results.published[0]).toMatchObject({ requestId: run.id, status: 'ok', output: { frames: 4 } });
    // A segment resent after the answer stays unanswered: the device does not wait on it.
    expect(await resend.handle(topic, encodePayload(segment(run, 0)), { receivedAt: publishedAt + 1_500 })).toMatchObject({ status: 'duplicate', answered: false });
    expect(results.published).toHaveLength(1);
  });
});

/**
 * A device that opens segmented runs and never ends them holds a checkpoint, parked
 * segments and a live state per run: past its cap a run-open is refused, typed, to that
 * device only, and a run that ends, is abandoned or expires frees its slot.
 */
describe('ingest: open segmented runs per device', () => {
  let ledger: SqliteRequestLedger;
  let queue: SqliteWorkQueue;
  let results: KeptResults;
  let ingest: Ingest;
  const CAP = 3;
  beforeEach(() => {
    const at = mkdtempSync(join(dir, 'cap-'));
    ledger = new SqliteRequestLedger({ path: join(at, 'ledger.db') });
    queue = new SqliteWorkQueue({ path: join(at, 'queue.db'), maxDeliveries: 3 });
    results = new KeptResults();
    ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) }, openRuns: new OpenRunLimit(CAP, ledger) });
  });
  afterEach(async () => {
    await ledger.close();
    await queue.close();
  });

  function openBy(device: string, instanceUid: string): RunOpenV1 {
    const header = { uri: `s3://runs/acme/${device}/${instanceUid}/header`, size: 2000, sha256: sha('a'), contentType: 'application/dicom' as const };
    const algorithm = 'contrast-injection@^1';
    const id = segmentedRunId({ tenant: 'acme', device, instanceUid, algorithm, headerUri: header.uri, headerSha256: header.sha256 });
    return { v: 1, kind: 'run-open', id, tenant: 'acme', device, algorithm, instanceUid, header, priority: 'clinical', timings: { acquired: 1 } };
  }
  const from = (device: string): typeof topic => ({ ...topic, device });

  it('refuses the run-open past the cap TOO_MANY_OPEN_RUNS to its sender, unrecorded; resends and other devices are not counted against it', async () => {
    const runs = Array.from({ length: CAP + 1 }, (_, i) => openBy('dev1', `1.2.9.${i}`));
    for (const run of runs.slice(0, CAP)) expect(await ingest.handle(from('dev1'), encodePayload(run))).toEqual({ status: 'accepted', requestId: run.id });
    const over = runs[CAP]!;
    expect(await ingest.handle(from('dev1'), encodePayload(over))).toEqual({ status: 'rejected', requestId: over.id, code: 'TOO_MANY_OPEN_RUNS' });
    expect(results.published).toEqual([expect.objectContaining({ requestId: over.id, tenant: 'acme', device: 'dev1', status: 'rejected', error: expect.objectContaining({ code: 'TOO_MANY_OPEN_RUNS' }) as unknown })]);
    expect(await ledger.get(over.id)).toBeUndefined();
    expect(await queue.pending(over.id)).toBe(false);
    // A resend of an open run is not a new run.
    expect(await ingest.handle(from('dev1'), encodePayload(runs[0]!))).toMatchObject({ status: 'duplicate', requestId: runs[0]!.id });
    // Another device holds its own slots.
    for (let i = 0; i < CAP; i++) {
      const other = openBy('dev2', `1.2.9.${i}`);
      expect(await ingest.handle(from('dev2'), encodePayload(other))).toEqual({ status: 'accepted', requestId: other.id });
    }
    expect(results.published.map((r) => r.device)).toEqual(['dev1']);
  });

  it('frees the slot of a run that is abandoned, or answered (ended or expired)', async () => {
    const runs = Array.from({ length: CAP + 2 }, (_, i) => openBy('dev1', `1.2.8.${i}`));
    for (const run of runs.slice(0, CAP)) await ingest.handle(from('dev1'), encodePayload(run));
    const [first, second] = runs as [RunOpenV1, RunOpenV1];
    expect(await ingest.handle(from('dev1'), encodePayload(runs[CAP]!))).toMatchObject({ status: 'rejected', code: 'TOO_MANY_OPEN_RUNS' });
    // The device abandons one: the refused run-open, sent again, is admitted.
    const abandon = { v: 1, kind: 'run-abandon', requestId: first.id, tenant: 'acme', device: 'dev1', reason: { code: 'WITHDRAWN' }, at: 2 };
    expect(await ingest.handle(from('dev1'), Buffer.from(JSON.stringify(abandon)))).toMatchObject({ requestId: first.id });
    expect(await ingest.handle(from('dev1'), encodePayload(runs[CAP]!))).toEqual({ status: 'accepted', requestId: runs[CAP]!.id });
    expect(await ingest.handle(from('dev1'), encodePayload(runs[CAP + 1]!))).toMatchObject({ status: 'rejected', code: 'TOO_MANY_OPEN_RUNS' });
    // A worker records another's result (its end, or RUN_EXPIRED): its slot is free too.
    await ledger.recordResult({ v: 1, requestId: second.id, tenant: 'acme', device: 'dev1', status: 'failed', error: { code: 'RUN_EXPIRED', message: 'idle' }, timings: { computed: 3 } });
    expect(await ingest.handle(from('dev1'), encodePayload(runs[CAP + 1]!))).toEqual({ status: 'accepted', requestId: runs[CAP + 1]!.id });
  });
});
