import { ArteriaPolicy } from '@arteria/scaling';
import type { DeviceDirectory } from '../devices/device-directory.js';
import type { RequestLedger } from '../ledger/index.js';
import type { PlatformMetrics } from '../metrics/metrics.js';
import type { WorkQueue } from '../queue/work-queue.js';
import type { WorkerPool } from '../worker/worker-pool.js';
import { Autoscaler } from './autoscaler.js';
import type { AutoscaleOptions } from './options.js';
import { serviceTotals, type SignalSource } from './signal-source.js';
import { WorkerPoolTarget } from './worker-pool-target.js';

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
export function startEmbeddedAutoscaler(parts: EmbeddedParts, o: AutoscaleOptions, onError: (error: Error) => void): Autoscaler {
  const policy = new ArteriaPolicy({
    waitBudgetMs: o.waitBudgetMs,
    epsilon: o.epsilon,
    workerStartupMs: o.workerStartupMs,
    minWorkers: o.minWorkers,
    maxWorkers: o.maxWorkers,
    requestsPerRun: o.requestsPerRun,
    serviceMs: o.serviceMs,
    serviceCv: o.serviceCv,
    scaleInDelayMs: o.scaleInDelayMs,
    rateSmoothingMs: o.rateSmoothingMs,
  });
  const autoscaler = new Autoscaler(
    { policy, target: new WorkerPoolTarget(parts.pool), source: embeddedSignalSource(parts), onError },
    { intervalMs: o.intervalMs, minWorkers: o.minWorkers, maxWorkers: o.maxWorkers, assumedServiceCv: o.serviceCv },
  );
  autoscaler.start();
  return autoscaler;
}
