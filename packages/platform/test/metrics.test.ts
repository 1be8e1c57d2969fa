// Which worker series each kind of process exports: only processes that run workers report
// arteria_workers (so a sum over the fleet is the running count, 0 when none runs), and only
// the autoscaler's decision is arteria_workers_desired.
import { describe, expect, it } from 'vitest';
import { PlatformMetrics, type PlatformGaugeSource } from '@arteria/telemetry';
import type { ResultV1 } from '@arteria/protocol';

const queue = (): ReturnType<PlatformGaugeSource['queue']> => Promise.resolve({ ready: 3, inFlight: 0, delayed: 0, deadLettered: 0, oldestAgeMs: 0 });
const scrape = (source: PlatformGaugeSource): Promise<string> => new PlatformMetrics(source).registry.metrics();
const sample = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));

describe('platform metrics', () => {
  it('a process without workers (ingest, dashboard) exports no worker series', async () => {
    const text = await scrape({ queue, devicesConnected: () => 0 });
    expect(sample(text, 'arteria_workers')).toEqual([]);
    expect(sample(text, 'arteria_workers_busy')).toEqual([]);
    expect(sample(text, 'arteria_workers_desired')).toEqual([]);
    expect(sample(text, 'arteria_queue_ready')).toEqual(['arteria_queue_ready 3']);
  });

  it('the autoscaler exports its decision as desired, not as running workers', async () => {
    let target: number | undefined = undefined;
    const metrics = new PlatformMetrics({ queue, desiredWorkers: () => target, devicesConnected: () => 0 });
    // Before its first decision it wants nothing yet.
    expect(sample(await metrics.registry.metrics(), 'arteria_workers_desired')).toEqual(['arteria_workers_desired 0']);
    target = 5;
    const text = await metrics.registry.metrics();
    expect(sample(text, 'arteria_workers_desired')).toEqual(['arteria_workers_desired 5']);
    expect(sample(text, 'arteria_workers')).toEqual([]);
  });

  it('a worker process exports its running and busy workers', async () => {
    const text = await scrape({ queue, workers: () => ({ size: 4, busy: 1 }), devicesConnected: () => 0 });
    expect(sample(text, 'arteria_workers')).toEqual(['arteria_workers 4']);
    expect(sample(text, 'arteria_workers_busy')).toEqual(['arteria_workers_busy 1']);
  });

  it('times compute per algorithm version and status, and leaves out results that never ran', async () => {
    const metrics = new PlatformMetrics({ queue, devicesConnected: () => 0 });
    const base = { v: 1, tenant: 't', device: 'd' } as const;
    const algorithm = (version: string): ResultV1['algorithm'] => ({ name: 'nap', version, digest: `sha256:${'0'.repeat(64)}` });
    metrics.observeResult({ ...base, requestId: 'r1', status: 'ok', algorithm: algorithm('1.0.0'), output: {}, timings: { fetched: 1000, computed: 1040, resultPublished: 1041 } });
    metrics.observeResult({ ...base, requestId: 'r2', status: 'ok', algorithm: algorithm('1.1.0'), output: {}, timings: { fetched: 1000, computed: 3000, resultPublished: 3001 } });
    metrics.observeResult({ ...base, requestId: 'r3', status: 'failed', algorithm: algorithm('1.1.0'), error: { code: 'ALGORITHM_TIMEOUT', message: 'x' }, timings: { fetched: 1000, computed: 1100 } });
    // Refused at admission: no algorithm ran, nothing to time.
    metrics.observeResult({ ...base, requestId: 'r4', status: 'rejected', error: { code: 'UNKNOWN_ALGORITHM', message: 'x' }, timings: { resultPublished: 5 } });
    const text = await metrics.registry.metrics();
    expect(sample(text, 'arteria_algorithm_duration_seconds_count').sort()).toEqual([
      'arteria_algorithm_duration_seconds_count{algorithm="nap",version="1.0.0",status="ok"} 1',
      'arteria_algorithm_duration_seconds_count{algorithm="nap",version="1.1.0",status="failed"} 1',
      'arteria_algorithm_duration_seconds_count{algorithm="nap",version="1.1.0",status="ok"} 1',
    ]);
    expect(sample(text, 'arteria_algorithm_duration_seconds_sum')).toContain('arteria_algorithm_duration_seconds_sum{algorithm="nap",version="1.1.0",status="ok"} 2');
  });

  it('each instance has the process metrics on its own registry', async () => {
    const a = await scrape({ queue, devicesConnected: () => 0 });
    const b = await scrape({ queue, devicesConnected: () => 0 });
    for (const text of [a, b]) {
      expect(sample(text, 'process_resident_memory_bytes')).toHaveLength(1);
      expect(sample(text, 'process_cpu_seconds_total')).toHaveLength(1);
    }
  });
});
