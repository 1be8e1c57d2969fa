import type { PlatformMetrics } from '@arteria/telemetry';

/** What the controller reads from the platform at each tick. Counters are cumulative. */
export interface PlatformSample {
  /** Requests accepted since start. */
  accepted: number;
  /** Tasks whose service finished since start, and their total service time, ms. */
  serviced: number;
  serviceMsSum: number;
  /** Sum of squared service times where the source knows it. */
  serviceMsSumSquares: number | undefined;
  queue: { ready: number; inFlight: number; oldestAgeMs: number };
  /** From device status messages; undefined where no device reports it. */
  devicesInProcedure: number | undefined;
}

export interface SignalSource {
  sample(): Promise<PlatformSample>;
}

/** Service = lease to result published: the stages a worker spends on a task. */
const SERVICE_STAGES = new Set(['fetched', 'computed', 'resultPublished']);

/**
 * Service time totals from the platform's stage histogram (each stage is the time since
 * the previous one), so the autoscaler measures exactly what the metrics endpoint shows.
 */
export async function serviceTotals(metrics: PlatformMetrics): Promise<{ count: number; sumMs: number }> {
  const data = await metrics.stage.get();
  let sumS = 0;
  let count = 0;
  for (const v of data.values) {
    const stage = String(v.labels.stage ?? '');
    if (v.metricName?.endsWith('_sum') && SERVICE_STAGES.has(stage)) sumS += v.value;
    if (v.metricName?.endsWith('_count') && stage === 'resultPublished') count = v.value;
  }
  return { count, sumMs: sumS * 1000 };
}

/**
 * Signals of one pool's queue alone (depth, tasks in service, oldest age), for a pool
 * sized by its backlog: the ledger counts every pool's arrivals together, so only the
 * pool's own queue says how much work waits for it.
 */
export function queueSignalSource(queue: { stats(): Promise<{ ready: number; inFlight: number; oldestAgeMs: number }> }): SignalSource {
  return {
    async sample(): Promise<PlatformSample> {
      const stats = await queue.stats();
      return { accepted: 0, serviced: 0, serviceMsSum: 0, serviceMsSumSquares: undefined, queue: { ready: stats.ready, inFlight: stats.inFlight, oldestAgeMs: stats.oldestAgeMs }, devicesInProcedure: undefined };
    },
  };
}
