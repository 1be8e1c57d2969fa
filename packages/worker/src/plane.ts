import type { Lifecycle, RunCheckpointStore } from '@arteria/ports';
import type { AlgorithmCatalog } from './algorithms/live-registry.js';
import { AlgorithmRunner } from './algorithms/sandbox.js';
import { registryExecutor } from './registry-executor.js';
import type { ShadowRunner } from './shadow-runner.js';
import type { AlgorithmExecutor, WorkerDeps, WorkerSettings } from './worker.js';
import { WorkerPool } from './worker-pool.js';
import { IncrementalRunner } from './segmented/incremental-runner.js';
import { registryIncremental } from './segmented/registry-incremental.js';
import { SegmentedSteps } from './segmented/segmented-steps.js';

export interface WorkerPlanePorts extends Omit<WorkerDeps, 'executor' | 'shadow' | 'segmented'> {
  /** Where segmented runs keep their checkpoints, shared by every worker of the queue (embedded: SQLite beside the queue; cluster: where the ledger lives). */
  checkpoints: RunCheckpointStore;
  /** A `LiveRegistry` where versions change while the process runs. */
  registry: AlgorithmCatalog;
  /** Builds the shadow runner from the plane's executor, where shadow plans exist. */
  shadow?: (executor: AlgorithmExecutor) => ShadowRunner | undefined;
}

export interface WorkerPlaneSettings extends WorkerSettings {
  threadsPerAlgorithm: number;
  /** The inference backend module the algorithm threads load (ONNX Runtime or a KServe v2 client). */
  inferenceModule: string;
}

/**
 * The worker plane, built the same way by the embedded platform and the worker role: the
 * isolated runner, the executor that runs a task's pinned version (refusing a digest no
 * longer installed), and the pool of workers. The runner closes with `life`; the pool is
 * drained by its owner (a role drains it before anything else closes).
 */
export interface WorkerPlane {
  readonly runner: AlgorithmRunner;
  readonly executor: AlgorithmExecutor;
  readonly pool: WorkerPool;
  /** Segmented runs this process holds between their steps (their state live in its threads). */
  runsInHand(): number;
  /** Starts each installed version's threads, so the first request does not pay for it (again after the registry changed: new versions). */
  warm(onError: (error: unknown) => void): void;
}

export function buildWorkerPlane(ports: WorkerPlanePorts, settings: WorkerPlaneSettings, life: Pick<Lifecycle, 'defer'>): WorkerPlane {
  const runner = new AlgorithmRunner({ threadsPerAlgorithm: settings.threadsPerAlgorithm, inferenceModule: settings.inferenceModule });
  life.defer('algorithm runner', () => runner.close());
  const executor = registryExecutor(ports.registry, runner);
  const { registry, shadow: shadowOf, checkpoints, ...deps } = ports;
  const shadow = shadowOf?.(executor);
  const incremental = new IncrementalRunner({ inferenceModule: settings.inferenceModule });
  life.defer('incremental runner', () => incremental.close());
  const segmented = new SegmentedSteps({ checkpoints, ledger: ports.ledger, incremental: registryIncremental(ports.registry, incremental), inputs: ports.inputs, results: ports.results, maxInputBytes: settings.maxInputBytes });
  const pool = new WorkerPool(
    { ...deps, executor, segmented, ...(shadow ? { shadow } : {}) },
    { visibilityMs: settings.visibilityMs, leaseWaitMs: settings.leaseWaitMs, maxInputBytes: settings.maxInputBytes, maxDeliveries: settings.maxDeliveries, ...(settings.segmentedRunIdleMs === undefined ? {} : { segmentedRunIdleMs: settings.segmentedRunIdleMs }) },
  );
  return {
    runner,
    executor,
    pool,
    runsInHand: () => segmented.runsInHand,
    warm: (onError) => {
      for (const algorithm of registry.list()) {
        runner.warm(algorithm).catch(onError);
        // The thread segmented runs fold in (large whole files go that way by default), started too.
        incremental.warm(algorithm).catch(onError);
      }
    },
  };
}
