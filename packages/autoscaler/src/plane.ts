import { ArteriaPolicy } from '@arteria/scaling';
import { Autoscaler, type AutoscalerDeps } from './autoscaler.js';
import type { AutoscaleOptions } from './options.js';

/**
 * The autoscaler plane: Arteria's queueing-model policy (`ArteriaPolicy`) reading a signal
 * source and resizing a scale target every `intervalMs`. The embedded platform builds it
 * over its local worker pool, the autoscaler role over KEDA or a Deployment; the caller
 * starts it and closes it.
 */
export function buildAutoscaler(ports: Omit<AutoscalerDeps, 'policy'>, o: AutoscaleOptions): Autoscaler {
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
  return new Autoscaler({ policy, ...ports }, { intervalMs: o.intervalMs, minWorkers: o.minWorkers, maxWorkers: o.maxWorkers, assumedServiceCv: o.serviceCv });
}
