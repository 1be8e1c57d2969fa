import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestV1, encodePayload, requestId, type AlgorithmRef, type GrantAnswerV1, type GrantRequestV1, type ResultV1 } from '@arteria/protocol';
import { AdmissionRateLimiter, Ingest } from '@arteria/ingest';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { RevocationList, decodeTask, type ResultPublisher, type UploadGrantSigner } from '@arteria/ports';

const dir = mkdtempSync(join(tmpdir(), 'arteria-ingest-trust-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };
const topic = (device: string) => ({ tenant: 'acme', device, kind: 'requests' as const });

function request(tenant: string, device: string, n: number): RequestV1 {
  const instanceUid = `1.2.3.${n}`;
  const uri = `s3://runs/${tenant}/${device}/${instanceUid}.dcm`;
  const sha256 = n.toString(16).padStart(64, '0');
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant, device, instanceUid, sha256, algorithm: 'echo@^1', inputUris: [uri] }),
    tenant,
    device,
    algorithm: 'echo@^1',
    instanceUid,
    inputs: [{ uri, size: 10, sha256, contentType: 'application/dicom' }],
    timings: { published: 1_000 },
  });
}

const grantRequest = (n: number): GrantRequestV1 => ({ v: 1, kind: 'grant', id: `g${n}`, key: `acme/a/1.2.3.${n}.dcm`, operations: ['put'] });

/** Results and grant answers, kept for the test to read. */
class Kept implements ResultPublisher {
  readonly published: ResultV1[] = [];
  readonly grants: GrantAnswerV1[] = [];
  publish(result: ResultV1): Promise<void> {
    this.published.push(result);
    return Promise.resolve();
  }
  publishGrant(answer: GrantAnswerV1): Promise<void> {
    this.grants.push(answer);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Signs nothing: answers every grant with one URL, counting how often it was asked. */
class CountingSigner implements UploadGrantSigner {
  signed = 0;
  issue(from: { tenant: string; device: string }, request: GrantRequestV1): Promise<GrantAnswerV1> {
    this.signed += 1;
    return Promise.resolve({ v: 1, kind: 'grant-answer', grantId: request.id, tenant: from.tenant, device: from.device, key: request.key, expiresAt: Date.now() + 60_000, urls: { put: 'http://127.0.0.1:1/x' }, parts: [] });
  }
}

async function withIngest(extra: Partial<ConstructorParameters<typeof Ingest>[0]>, body: (ingest: Ingest, kept: Kept, queue: SqliteWorkQueue, ledger: SqliteRequestLedger) => Promise<void>): Promise<void> {
  const name = Math.random().toString(36).slice(2);
  const ledger = new SqliteRequestLedger({ path: join(dir, `${name}-ledger.db`) });
  const queue = new SqliteWorkQueue({ path: join(dir, `${name}-queue.db`), maxDeliveries: 3 });
  const kept = new Kept();
  const ingest = new Ingest({ queue, ledger, results: kept, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) }, ...extra });
  try {
    await body(ingest, kept, queue, ledger);
  } finally {
    await queue.close();
    await ledger.close();
  }
}

describe('ingest: upload grant requests take a rate token', () => {
  it('answers a device\'s grant requests beyond its burst RATE_LIMITED without signing them, and other devices go on', async () => {
    let now = 0;
    const signer = new CountingSigner();
    await withIngest({ grants: signer, grantRateLimit: new AdmissionRateLimiter({ perMinute: 60, burst: 5 }, () => now, 'upload grant requests') }, async (ingest, kept) => {
      for (let n = 0; n < 50; n++) await ingest.handle(topic('a'), encodePayload(grantRequest(n)));
      expect(signer.signed).toBe(5);
      const limited = kept.grants.filter((g) => g.error?.code === 'RATE_LIMITED');
      expect(limited).toHaveLength(45);
      expect(limited[0]?.error?.message).toMatch(/upload grant requests.*retry after 1000 ms/);
      expect(limited.every((g) => Object.keys(g.urls).length === 0 && g.parts.length === 0)).toBe(true);
      // Another device is not slowed by the flood; the flooder gets one token a second back.
      await ingest.handle(topic('b'), encodePayload({ ...grantRequest(99), key: 'acme/b/1.dcm' }));
      expect(kept.grants.at(-1)).toMatchObject({ device: 'b', urls: { put: expect.any(String) as unknown } });
      now += 1_000;
      await ingest.handle(topic('a'), encodePayload(grantRequest(100)));
      expect(kept.grants.at(-1)?.error).toBeUndefined();
      expect(signer.signed).toBe(7);
    });
  });
});

describe('ingest: revoked devices', () => {
  it('refuses a revoked device\'s requests and grant requests DEVICE_REVOKED, keeping them out of the ledger; the tenant\'s other devices are admitted', async () => {
    const signer = new CountingSigner();
    const revocations = new RevocationList([{ tenant: 'acme', device: 'lost', revokedAt: Date.parse('2026-01-01T00:00:00Z') }]);
    await withIngest({ grants: signer, revocations }, async (ingest, kept, queue, ledger) => {
      const refused = request('acme', 'lost', 1);
      expect(await ingest.handle(topic('lost'), encodePayload(refused))).toMatchObject({ status: 'rejected', code: 'DEVICE_REVOKED' });
      expect(await ledger.get(refused.id)).toBeUndefined();
      expect(kept.published.at(-1)).toMatchObject({ requestId: refused.id, device: 'lost', status: 'rejected', error: { code: 'DEVICE_REVOKED' } });
      expect(await ingest.handle(topic('lost'), encodePayload({ ...grantRequest(1), key: 'acme/lost/1.dcm' }))).toMatchObject({ status: 'rejected', code: 'DEVICE_REVOKED' });
      expect(signer.signed).toBe(0);
      expect(await ingest.handle(topic('other'), encodePayload(request('acme', 'other', 2)))).toMatchObject({ status: 'accepted' });
      expect((await queue.stats()).ready).toBe(1);
    });
  });
});

describe('ingest: identified inputs', () => {
  it('stamps the tenant\'s consent on its tasks only for tenants that allow identified inputs', async () => {
    await withIngest({ identifiedInputTenants: new Set(['research']) }, async (ingest, _kept, queue) => {
      await ingest.handle({ tenant: 'research', device: 'a', kind: 'requests' }, encodePayload(request('research', 'a', 1)));
      await ingest.handle({ tenant: 'acme', device: 'a', kind: 'requests' }, encodePayload(request('acme', 'a', 2)));
      const tasks = (await queue.lease({ max: 10, visibilityMs: 1_000, waitMs: 0 })).map((lease) => decodeTask(lease.payload));
      expect(tasks.map((t) => [t.request.tenant, t.identifiedInputs])).toEqual([
        ['research', 'allow'],
        ['acme', undefined],
      ]);
    });
  });
});
