import type { DeviceDirectory, RequestLedger, WorkQueue } from '@arteria/ports';
import type { PlatformSample, SignalSource } from './signal-source.js';

export interface LedgerSignalDeps {
  queue: WorkQueue;
  ledger: RequestLedger;
  /** Fed by status messages where the autoscaler subscribes to them; without it the policy works from arrivals. */
  devices?: DeviceDirectory;
  /** Recent ledger entries read per sample to find new completions (covers bursts up to this many per tick). */
  recentLimit?: number;
}

/**
 * Signals from the shared stores any deployment has (a `WorkQueue` and a `RequestLedger`),
 * for an autoscaler that runs apart from the workers (Kubernetes, KEDA). Service time is
 * lease to result published, read from each new result's timings; squared times are
 * summed too, so the policy measures the service variability instead of assuming it.
 */
export function ledgerSignalSource(deps: LedgerSignalDeps): SignalSource {
  const limit = deps.recentLimit ?? 1_000;
  const seen = new Set<string>();
  let serviced = 0;
  let serviceMsSum = 0;
  let serviceMsSumSquares = 0;
  let first = true;
  return {
    async sample(): Promise<PlatformSample> {
      const [counts, queue, recent] = await Promise.all([deps.ledger.counts(), deps.queue.stats(), deps.ledger.recent(limit)]);
      const current = new Set<string>();
      for (const entry of recent) {
        if (entry.state !== 'completed') continue;
        current.add(entry.requestId);
        // Completions already present at the first sample are history, not this tick's work.
        if (first || seen.has(entry.requestId)) continue;
        const t = entry.result.timings;
        if (t.leased === undefined || t.resultPublished === undefined) continue;
        const ms = Math.max(0, t.resultPublished - t.leased);
        serviced += 1;
        serviceMsSum += ms;
        serviceMsSumSquares += ms * ms;
      }
      // Remember only what the window still shows, so memory stays bounded.
      seen.clear();
      for (const id of current) seen.add(id);
      first = false;
      const devices = deps.devices?.counts();
      return {
        accepted: counts.accepted,
        serviced,
        serviceMsSum,
        serviceMsSumSquares,
        queue,
        devicesInProcedure: devices && devices.known > 0 ? devices.inProcedure : undefined,
      };
    },
  };
}
