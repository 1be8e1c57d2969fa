import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestV1, requestId, type ResultV1 } from '@arteria/protocol';
import { NatsRequestLedger, type AcceptedRequest } from '@arteria/platform';
import { TestNatsServer } from './support/nats-server.js';

const SHA = 'c'.repeat(64);

function makeRequest(instanceUid: string): RequestV1 {
  const algorithm = 'nap@^1';
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant: 'h1', device: 'cl-1', instanceUid, sha256: SHA, algorithm }),
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
    expect(entry?.result).toEqual(makeResult(request, 'ok'));
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
});
