import { z } from 'zod';
import type { ResultV1 } from '@arteria/protocol';

/** How canaries are judged against the versions below them, and what a withdrawal records. */
export const WITHDRAWAL_FORMAT = 'arteria-canary-withdrawal/v1';

const SideStats = z.strictObject({
  runs: z.number().int().min(0),
  failed: z.number().int().min(0),
  errorRate: z.number().min(0).max(1),
  p95LatencyMs: z.number().min(0),
});
export type SideStats = z.infer<typeof SideStats>;

export const CanaryWithdrawal = z.strictObject({
  format: z.literal(WITHDRAWAL_FORMAT),
  tenant: z.string(),
  algorithm: z.string(),
  version: z.string(),
  at: z.string().datetime(),
  /** Which bound was passed, in words. */
  reason: z.string(),
  canary: SideStats,
  others: SideStats,
  /** Who withdrew it (an ingest instance). */
  by: z.string(),
});
export type CanaryWithdrawal = z.infer<typeof CanaryWithdrawal>;

export interface CanaryBounds {
  minSamples: number;
  maxErrorRateIncrease: number;
  maxLatencyRatio: number;
}

function stats(results: readonly ResultV1[]): SideStats {
  const latencies = results
    .map((r) => {
      const end = r.timings.computed ?? r.timings.resultPublished;
      return r.timings.leased !== undefined && end !== undefined ? Math.max(0, end - r.timings.leased) : undefined;
    })
    .filter((ms): ms is number => ms !== undefined)
    .sort((a, b) => a - b);
  const failed = results.filter((r) => r.status === 'failed').length;
  const p95 = latencies.length === 0 ? 0 : (latencies[Math.min(latencies.length - 1, Math.ceil(0.95 * latencies.length) - 1)] ?? 0);
  return { runs: results.length, failed, errorRate: results.length === 0 ? 0 : failed / results.length, p95LatencyMs: p95 };
}

export interface CanaryVerdict {
  canary: SideStats;
  others: SideStats;
  /** Why it must be withdrawn; undefined: within bounds, or too few samples yet. */
  regression: string | undefined;
}

/**
 * Compares one tenant's results of the canary version of an algorithm with its results of
 * the other versions. Failures count (`failed`: the algorithm or the platform failed it),
 * refusals do not (`rejected`: the input was refused, whatever the version). Nothing is
 * judged before both sides have `minSamples` results.
 */
export function judgeCanary(results: readonly ResultV1[], tenant: string, algorithm: string, version: string, bounds: CanaryBounds): CanaryVerdict {
  const mine = results.filter((r) => r.tenant === tenant && r.algorithm?.name === algorithm && r.status !== 'rejected');
  const canary = stats(mine.filter((r) => r.algorithm?.version === version));
  const others = stats(mine.filter((r) => r.algorithm?.version !== version));
  if (canary.runs < bounds.minSamples || others.runs < bounds.minSamples) return { canary, others, regression: undefined };
  const increase = canary.errorRate - others.errorRate;
  if (increase > bounds.maxErrorRateIncrease) {
    return { canary, others, regression: `error rate ${(canary.errorRate * 100).toFixed(1)} % against ${(others.errorRate * 100).toFixed(1)} % (bound: +${(bounds.maxErrorRateIncrease * 100).toFixed(1)} points)` };
  }
  if (others.p95LatencyMs > 0 && canary.p95LatencyMs > others.p95LatencyMs * bounds.maxLatencyRatio) {
    return { canary, others, regression: `p95 latency ${canary.p95LatencyMs.toFixed(0)} ms against ${others.p95LatencyMs.toFixed(0)} ms (bound: x${bounds.maxLatencyRatio})` };
  }
  return { canary, others, regression: undefined };
}
