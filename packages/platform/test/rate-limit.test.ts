import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestV1, encodePayload, requestId, type AlgorithmRef, type ProbeAnswerV1 } from '@arteria/protocol';
import { AdmissionRateLimiter, Ingest, buildIngest } from '@arteria/ingest';
import { createLogger } from '@arteria/telemetry';
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

  it('answers a flood of junk and probes from one device only within its reply budget: RATE_LIMITED once, then nothing, while other devices are answered', async () => {
    let now = 0;
    const ledger = new SqliteRequestLedger({ path: join(dir, 'reply-ledger.db') });
    const queue = new SqliteWorkQueue({ path: join(dir, 'reply-queue.db'), maxDeliveries: 3 });
    const results = new KeptResults();
    const probeAnswers: ProbeAnswerV1[] = [];
    const publisher = Object.assign(results, { publishProbeAnswer: (answer: ProbeAnswerV1) => Promise.resolve(void probeAnswers.push(answer)) });
    const lines: string[] = [];
    const logger = createLogger({ role: 'ingest', level: 'info', destination: { write: (line: string) => lines.push(line) } });
    const warned = (): string[] => lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn').map((l) => l.msg);
    const ingest = new Ingest({
      queue, ledger, results: publisher, bucket: 'runs', algorithms: { resolve: () => ({ ref: REF }) },
      replyLimit: new AdmissionRateLimiter({ perMinute: 60, burst: 20 }, () => now), logger,
    });
    try {
      const topic = (device: string) => ({ tenant: 'acme', device, kind: 'requests' as const });
      const probe = (n: number): Buffer => encodePayload({ v: 1, kind: 'probe', id: `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`, algorithms: ['echo@^1'] });
      // Junk (not JSON) and probes in turn, 300 messages.
      for (let n = 0; n < 300; n++) await ingest.handle(topic('flood'), n % 2 === 0 ? Buffer.from(`junk ${n}`) : probe(n));
      const answered = results.published.length + probeAnswers.length;
      expect(answered).toBe(21);
      const limited = [...results.published.map((r) => r.error?.code), ...probeAnswers.flatMap((a) => a.algorithms.map((v) => v.error?.code))].filter((c) => c === 'RATE_LIMITED');
      expect(limited).toHaveLength(1);
      expect(warned().filter((m) => m.startsWith('device over its reply budget'))).toHaveLength(1);
      // Each answered refusal is a log line; the unanswered ones are not.
      expect(lines.length).toBeLessThan(40);
      // Nothing of the flood reached the ledger or the queue.
      expect((await queue.stats()).ready).toBe(0);

      // Another device is answered.
      await ingest.handle(topic('quiet'), Buffer.from('junk'));
      expect(results.published.at(-1)).toMatchObject({ device: 'quiet', status: 'rejected', error: { code: 'INVALID_JSON' } });
      // A second later the flooding device has one answer again.
      now += 1_000;
      await ingest.handle(topic('flood'), probe(1_000));
      expect(probeAnswers.at(-1)).toMatchObject({ device: 'flood', algorithms: [{ spec: 'echo@^1', status: 'accepted' }] });
      expect(results.published.length + probeAnswers.length).toBe(answered + 2);
      // Still in the same spell (its bucket never filled again): no second RATE_LIMITED.
      await ingest.handle(topic('flood'), Buffer.from('junk again'));
      expect(results.published.length + probeAnswers.length).toBe(answered + 2);
      // Quiet long enough to fill its bucket: answered again, and a new spell would be told once more.
      now += 60_000;
      await ingest.handle(topic('flood'), Buffer.from('junk after a quiet minute'));
      expect(results.published.at(-1)).toMatchObject({ device: 'flood', error: { code: 'INVALID_JSON' } });
    } finally {
      await queue.close();
      await ledger.close();
    }
  });
  it('takes the reply budget from its own setting where one is given, else from the admission rate', async () => {
    // One token a minute: the loop's own duration regains none.
    const cases = [
      { settings: { rate: { perMinute: 600, burst: 120 }, replyRate: { perMinute: 1, burst: 5 } }, answered: 6 },
      { settings: { rate: { perMinute: 1, burst: 8 } }, answered: 9 },
    ];
    for (const [i, { settings, answered }] of cases.entries()) {
      const ledger = new SqliteRequestLedger({ path: join(dir, `budget-ledger-${i}.db`) });
      const queue = new SqliteWorkQueue({ path: join(dir, `budget-queue-${i}.db`), maxDeliveries: 3 });
      const results = new KeptResults();
      const ingest = buildIngest({ queue, ledger, results, algorithms: { resolve: () => ({ ref: REF }) } }, { bucket: 'runs', maxOpenSegmentedRunsPerDevice: 8, ...settings });
      try {
        for (let n = 0; n < 50; n++) await ingest.handle({ tenant: 'acme', device: 'flood', kind: 'requests' }, Buffer.from(`junk ${n}`));
        // The burst answered INVALID_JSON, then one RATE_LIMITED.
        expect(results.published.map((r) => r.error?.code)).toEqual([...Array<string>(answered - 1).fill('INVALID_JSON'), 'RATE_LIMITED']);
      } finally {
        await queue.close();
        await ledger.close();
      }
    }
  });
});
