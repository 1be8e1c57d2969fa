import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { RequestV1, resultDigest, type ResultV1 } from '@arteria/protocol';
import { NatsRequestLedger } from '@arteria/engine-nats';
import { auditLedger, loadOrCreateLedgerSigner, type LedgerSigner } from '@arteria/ports';
import { TestNatsServer, requestLedgerConformance, acceptedOf, testRequest, testResult } from '@arteria/testing';

const makeRequest = (instanceUid: string): RequestV1 => testRequest(instanceUid, { algorithm: 'nap@^1' });
const accepted = acceptedOf;
const makeResult = (request: RequestV1, status: ResultV1['status']): ResultV1 => testResult(request, status);




{
  let server: TestNatsServer | undefined;
  requestLedgerConformance('NATS JetStream (two connections)', async () => {
    server ??= await TestNatsServer.start();
    return NatsRequestLedger.open({ servers: [server.url] });
  });
  afterAll(async () => {
    await server?.stop();
  });
}

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

    // Someone with access to the stream deletes the chain record of one result inside the
    // chain (the racing writers decide which result is last; a deleted last record is a
    // truncation, which the signed checkpoint reveals, not a gap).
    const chains = await Promise.all(requests.map(async (r) => ({ victim: r, completed: (await b.auditSource().chainOf(r.id)).find((c) => c.kind === 'completed' && c.seq < report.headSeq) })));
    const { victim, completed } = chains.find((c) => c.completed !== undefined) ?? { victim: requests[0]!, completed: undefined };
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
