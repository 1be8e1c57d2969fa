import type { DeviceDirectory, RequestLedger, WorkQueue } from '@arteria/ports';
import type { PlatformMetrics } from '@arteria/telemetry';
import { type WorkerPool, WorkerPoolTarget } from '@arteria/worker';
import { buildAutoscaler, serviceTotals, type Autoscaler, type AutoscaleOptions, type SignalSource } from '@arteria/autoscaler';

export interface EmbeddedParts {
  queue: WorkQueue;
  ledger: RequestLedger;
  metrics: PlatformMetrics;
  devices: DeviceDirectory;
  pool: WorkerPool;
}

/** Signals of an embedded platform: ledger counters, stage histogram, queue stats, device directory. */
export function embeddedSignalSource(parts: Omit<EmbeddedParts, 'pool'>): SignalSource {
  return {
    async sample() {
      const [counts, service, queue] = await Promise.all([parts.ledger.counts(), serviceTotals(parts.metrics), parts.queue.stats()]);
      const devices = parts.devices.counts();
      return {
        accepted: counts.accepted,
        serviced: service.count,
        serviceMsSum: service.sumMs,
        serviceMsSumSquares: undefined,
        queue,
        devicesInProcedure: devices.known > 0 ? devices.inProcedure : undefined,
      };
    },
  };
}

/** Arteria's policy driving the local worker pool: what `EmbeddedPlatform` starts when `autoscale` is set. */
export async function startEmbeddedAutoscaler(parts: EmbeddedParts, o: AutoscaleOptions, onError: (error: Error) => void): Promise<Autoscaler> {
  const autoscaler = buildAutoscaler({ target: new WorkerPoolTarget(parts.pool), source: embeddedSignalSource(parts), onError }, o);
  await autoscaler.start();
  return autoscaler;
}
