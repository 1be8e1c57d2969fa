import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestV1, encodePayload, requestId, type AlgorithmRef } from '@arteria/protocol';
import { AdmissionRateLimiter, Ingest } from '@arteria/ingest';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { KeptResults } from './support/kept-results.js';

const dir = mkdtempSync(join(tmpdir(), 'arteria-rate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REF: AlgorithmRef = { name: 'echo', version: '1.0.0', digest: `sha256:${'d'.repeat(64)}` };

function request(device: string, n: number): RequestV1 {
  const instanceUid = `1.2.3.${n}`;
  const uri = `s3://runs/acme/${device}/${instanceUid}.dcm`;
  const sha256 = n.toString(16).padStart(64, '0');
  return RequestV1.parse({
    v: 1,
    id: requestId({ tenant: 'acme', device, instanceUid, sha256, algorithm: 'echo@^1', inputUris: [uri] }),
    tenant: 'acme',
    device,
    algorithm: 'echo@^1',
    instanceUid,
    inputs: [{ uri, size: 10, sha256, contentType: 'application/dicom' }],
    timings: { published: 1_000 },
  });
}

describe('admission rate limit per device', () => {
  it('a token bucket: the burst at once, then the sustained rate, each device on its own', () => {
    let now = 0;
    const limiter = new AdmissionRateLimiter({ perMinute: 60, burst: 3 }, () => now);
    const a = { tenant: 'acme', device: 'a' };
    for (let i = 0; i < 3; i++) limiter.take(a);
    expect(() => limiter.take(a)).toThrow(/retry after 1000 ms/);
    limiter.take({ tenant: 'acme', device: 'b' });
    now += 1_000; // one token back at 60 per minute
    limiter.take(a);
    expect(() => limiter.take(a)).toThrow(expect.objectContaining({ code: 'RATE_LIMITED' }));
    const off = new AdmissionRateLimiter({ perMinute: 0 }, () => now);
    for (let i = 0; i < 1_000; i++) off.take(a);
  });

  it('keeps a flood of junk from one device out of the ledger, answers it RATE_LIMITED, and lets resends and other devices through', async () => {
    const ledger = new SqliteRequestLedger({ path: join(dir, 'ledger.db') });
    const queue = new SqliteWorkQueue({ path: join(dir, 'queue.db'), maxDeliveries: 3 });
    const results = new KeptResults();
    const ingest = new Ingest({ queue, ledger, results, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) }, rateLimit: new AdmissionRateLimiter({ perMinute: 60, burst: 20 }) });
    try {
      const topic = (device: string) => ({ tenant: 'acme', device, kind: 'requests' as const });
      const outcomes = [];
      for (let n = 0; n < 300; n++) outcomes.push(await ingest.handle(topic('flood'), encodePayload(request('flood', n))));
      const accepted = outcomes.filter((o) => o.status === 'accepted');
      expect(accepted).toHaveLength(20);
      expect(outcomes.filter((o) => o.status === 'rejected' && o.code === 'RATE_LIMITED')).toHaveLength(280);
      // Not in the ledger; each sender told why, on its own results topic.
      expect(await ledger.get(request('flood', 299).id)).toBeUndefined();
      expect(results.published.filter((r) => r.error?.code === 'RATE_LIMITED')).toHaveLength(280);
      expect((await queue.stats()).ready).toBe(20);

      // A resend of an admitted request takes no token.
      expect(await ingest.handle(topic('flood'), encodePayload(request('flood', 0)))).toMatchObject({ status: 'duplicate' });
      // Another device is not slowed by the flood.
      expect(await ingest.handle(topic('quiet'), encodePayload(request('quiet', 1)))).toMatchObject({ status: 'accepted' });
    } finally {
      await queue.close();
      await ledger.close();
    }
  });
});
