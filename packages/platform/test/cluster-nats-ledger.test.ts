import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { RequestV1, requestId, resultDigest, type ResultV1 } from '@arteria/protocol';
import { NatsRequestLedger, auditLedger, loadOrCreateLedgerSigner, type AcceptedRequest, type LedgerSigner } from '@arteria/platform';
import { TestNatsServer } from './support/nats-server.js';

const SHA = 'c'.repeat(64);

function makeRequest(instanceUid: string): RequestV1 {
  const algorithm = 'nap@^1';
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant: 'h1', device: 'cl-1', instanceUid, sha256: SHA, algorithm, inputUris: [`s3://runs/h1/cl-1/${instanceUid}.dcm`] }),
    tenant: 'h1',
    device: 'cl-1',
    algorithm,
    instanceUid,
    inputs: [{ uri: `s3://runs/h1/cl-1/${instanceUid}.dcm`, size: 10, sha256: SHA, contentType: 'application/dicom' }],
    timings: { acquired: 1_000, uploaded: 1_100, published: 1_200 },
  });
}

const accepted = (request: RequestV1, acceptedAt = 2_000): AcceptedRequest => ({ requestId: request.id, tenant: request.tenant, device: request.device, algorithm: request.algorithm, acceptedAt, request });

function makeResult(request: RequestV1, status: ResultV1['status']): ResultV1 {
  return {
    v: 1,
    requestId: request.id,
    tenant: request.tenant,
    device: request.device,
    status,
    ...(status === 'ok' ? { algorithm: { name: 'nap', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` }, output: { frames: 1 } } : { error: { code: 'ALGORITHM_CRASHED', message: 'no' } }),
    timings: { ...request.timings, resultPublished: 3_001 },
  };
}

/** The ledger every process of a multi-machine deployment shares, on a private nats-server. */
describe('NatsRequestLedger', () => {
  let server: TestNatsServer;
  let a: NatsRequestLedger;
  let b: NatsRequestLedger;

  beforeAll(async () => {
    server = await TestNatsServer.start();
    // Two connections: as two processes on two machines.
    a = await NatsRequestLedger.open({ servers: [server.url] });
    b = await NatsRequestLedger.open({ servers: [server.url] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await server?.stop();
  });

  it('records an acceptance once across processes; the first result stands', async () => {
    const request = makeRequest('1.1');
    expect(await a.get(request.id)).toBeUndefined();
    expect(await a.recordAccepted(accepted(request))).toBe('new');
    expect(await b.recordAccepted(accepted(request, 9_999))).toBe('existing');
    expect(await b.get(request.id)).toEqual({ ...accepted(request), state: 'accepted' });
    await b.recordResult(makeResult(request, 'ok'));
    await a.recordResult(makeResult(request, 'failed')); // a redelivered run: ignored
    const entry = await a.get(request.id);
    expect(entry?.state).toBe('completed');
    expect(entry?.result).toEqual({ ...makeResult(request, 'ok'), recordHash: resultDigest(makeResult(request, 'ok')) });
    expect(entry?.request).toEqual(request);
  });

  it('keeps a result recorded before its acceptance, then adds the request', async () => {
    const request = makeRequest('1.2');
    await a.recordResult(makeResult(request, 'rejected'));
    expect((await b.get(request.id))?.request).toBeUndefined();
    expect(await b.recordAccepted(accepted(request))).toBe('new');
    expect((await a.get(request.id))?.request).toEqual(request);
  });

  it('counts and lists recent entries', async () => {
    const counts = await a.counts();
    expect(counts).toEqual({ accepted: 2, completed: 2, ok: 1, rejected: 1, failed: 0 });
    const recent = await b.recent(10);
    expect(recent.map((e) => e.requestId).sort()).toEqual([makeRequest('1.1').id, makeRequest('1.2').id].sort());
  });

  it('notes once, for every process, that a result was published', async () => {
    const request = makeRequest('1.9');
    await a.recordResult(makeResult(request, 'ok'));
    expect((await b.get(request.id))?.publishedAt).toBeUndefined();
    await a.markPublished(request.id, 1_000);
    await b.markPublished(request.id, 2_000);
    expect(await b.get(request.id)).toMatchObject({ state: 'completed', publishedAt: 1_000 });
  });
});

/** The hash chain on JetStream: one chain across writers on several machines, tamper-evident. */
describe('NatsRequestLedger hash chain', () => {
  let server: TestNatsServer;
  let signer: LedgerSigner;
  let keyDir: string;
  const stream = 'CHAINED';

  beforeAll(async () => {
    server = await TestNatsServer.start();
    keyDir = await mkdtemp(path.join(tmpdir(), 'arteria-nats-key-'));
    signer = await loadOrCreateLedgerSigner(path.join(keyDir, 'key.pem'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('two writers racing form one verified chain; a deleted record is refused and named', async () => {
    const a = await NatsRequestLedger.open({ servers: [server.url], stream, signer, checkpointIntervalMs: 0 });
    const b = await NatsRequestLedger.open({ servers: [server.url], stream, signer, checkpointIntervalMs: 0 });
    const requests = ['5.1', '5.2', '5.3', '5.4', '5.5', '5.6'].map(makeRequest);
    // Each writer records half, at the same time: every append names the head it extends.
    await Promise.all(requests.map((r, i) => (i % 2 === 0 ? a : b).recordAccepted(accepted(r))));
    await Promise.all(requests.map((r, i) => (i % 2 === 0 ? b : a).recordResult(makeResult(r, 'ok'), { worker: `w${i}` })));
    await a.close(); // signs a checkpoint of the head
    const report = await auditLedger(b.auditSource(), signer.publicKey);
    expect(report).toMatchObject({ ok: true, records: 12, headSeq: 12, signedThrough: 12 });
    expect((await b.get(requests[0]!.id))?.result?.recordHash).toBe(resultDigest(makeResult(requests[0]!, 'ok')));

    // Someone with access to the stream deletes the chain record of one result.
    const victim = requests[3]!;
    const records = await b.auditSource().chainOf(victim.id);
    const completed = records.find((r) => r.kind === 'completed');
    expect(completed).toBeDefined();
    const nc = await connect({ servers: [server.url] });
    try {
      const jsm = await jetstreamManager(nc);
      const subject = `arteria.ledger.${stream.toLowerCase()}._chain`;
      let target: number | undefined;
      for (let seq = 1; target === undefined; seq++) {
        const m = await jsm.streams.getMessage(stream, { seq });
        if (m?.subject === subject && (m.json<{ seq: number }>()).seq === completed!.seq) target = seq;
      }
      await jsm.streams.deleteMessage(stream, target);
    } finally {
      await nc.close();
    }
    await expect(b.get(victim.id)).rejects.toMatchObject({ code: 'LEDGER_TAMPERED' });
    const after = await auditLedger(b.auditSource(), signer.publicKey);
    expect(after.ok).toBe(false);
    expect(after.findings.map((f) => f.problem)).toEqual(expect.arrayContaining(['removed', 'unchained']));
    expect(after.findings.find((f) => f.problem === 'removed')?.message).toMatch(new RegExp(`records ${completed!.seq}\\.\\.${completed!.seq} missing`));
    await b.close();
  });
});
