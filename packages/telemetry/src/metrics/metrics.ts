import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STAGES, type ResultV1, type Timings } from '@arteria/protocol';
import type { MetricHistory } from './history.js';

/** Fine buckets from 0.5 ms: the platform's own share of a request is a few ms. */
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60];

/** Algorithm compute times run from milliseconds to minutes. */
const ALGORITHM_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface PlatformGaugeSource {
  queue(): Promise<{ ready: number; inFlight: number; delayed: number; deadLettered: number; oldestAgeMs: number }>;
  /**
   * Workers this process runs. Absent in processes that run none (ingest, autoscaler,
   * dashboard): they export no `arteria_workers` series, so a sum over the fleet counts
   * only running workers.
   */
  workers?(): { size: number; busy: number };
  /** The worker count this process's autoscaler decided; undefined before its first decision (reported as 0). */
  desiredWorkers?(): number | undefined;
  devicesConnected(): number;
}

/** Prometheus metrics of one platform instance (its own registry: no global state). */
export class PlatformMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'outcome' | 'code'>;
  readonly results: Counter<'status' | 'code' | 'algorithm'>;
  readonly stage: Histogram<'stage'>;
  readonly platform: Histogram;
  readonly algorithm: Histogram<'algorithm' | 'version' | 'status'>;
  readonly #history: MetricHistory | undefined;

  /** `history`: the dashboard's ring, fed each published result too. */
  constructor(source: PlatformGaugeSource, history?: MetricHistory) {
    this.#history = history;
    const registers = [this.registry];
    // CPU, memory, event loop lag, GC and handles of this process, on its own registry.
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'arteria_requests_total',
      help: 'Requests seen by ingest, by outcome (accepted, duplicate, rejected) and error code.',
      labelNames: ['outcome', 'code'],
      registers,
    });
    this.results = new Counter({
      name: 'arteria_results_total',
      help: 'Results published to devices, by status, error code and algorithm.',
      labelNames: ['status', 'code', 'algorithm'],
      registers,
    });
    this.stage = new Histogram({
      name: 'arteria_stage_duration_seconds',
      help: 'Time from the previous stage to this one (uploaded, published, enqueued, leased, fetched, computed, resultPublished).',
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.platform = new Histogram({
      name: 'arteria_platform_overhead_seconds',
      help: 'Device publish to result publish, minus algorithm compute: the platform\'s own share of latency.',
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.algorithm = new Histogram({
      name: 'arteria_algorithm_duration_seconds',
      help: 'Algorithm compute time (input fetched to output computed) by algorithm, version and result status.',
      labelNames: ['algorithm', 'version', 'status'],
      buckets: ALGORITHM_BUCKETS_S,
      registers,
    });
    const queueGauge = (name: string, help: string, pick: (q: Awaited<ReturnType<PlatformGaugeSource['queue']>>) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          this.set(pick(await source.queue()));
        },
      });
    };
    queueGauge('arteria_queue_ready', 'Tasks ready to be leased.', (q) => q.ready);
    queueGauge('arteria_queue_in_flight', 'Tasks leased by a worker and not yet acknowledged.', (q) => q.inFlight);
    queueGauge('arteria_queue_delayed', 'Tasks waiting for a retry delay.', (q) => q.delayed);
    queueGauge('arteria_queue_dead_lettered', 'Tasks in the dead-letter store.', (q) => q.deadLettered);
    queueGauge('arteria_queue_oldest_age_seconds', 'Age of the oldest unacknowledged task.', (q) => q.oldestAgeMs / 1000);
    const workers = source.workers?.bind(source);
    if (workers !== undefined) {
      new Gauge({ name: 'arteria_workers', help: 'Workers running in this process (actual; the autoscaler\'s wish is arteria_workers_desired).', registers, collect() { this.set(workers().size); } });
      new Gauge({ name: 'arteria_workers_busy', help: 'Workers of this process running a task.', registers, collect() { this.set(workers().busy); } });
    }
    const desired = source.desiredWorkers?.bind(source);
    if (desired !== undefined) {
      new Gauge({
        name: 'arteria_workers_desired',
        help: 'Worker count the autoscaler decided last (0 before its first decision, one control interval after start).',
        registers,
        collect() {
          this.set(desired() ?? 0);
        },
      });
    }
    new Gauge({ name: 'arteria_devices_connected', help: 'MQTT clients connected to the embedded broker.', registers, collect() { this.set(source.devicesConnected()); } });
  }

  /** Records a published result's stage timings. */
  observeResult(result: ResultV1): void {
    this.#history?.observeResult(result);
    this.results.inc({ status: result.status, code: result.error?.code ?? '', algorithm: result.algorithm?.name ?? '' });
    observeStages(this.stage, result.timings);
    const t = result.timings;
    if (result.algorithm !== undefined && t.fetched !== undefined && t.computed !== undefined) {
      this.algorithm.observe({ algorithm: result.algorithm.name, version: result.algorithm.version, status: result.status }, Math.max(0, t.computed - t.fetched) / 1000);
    }
    if (t.published !== undefined && t.resultPublished !== undefined) {
      const compute = t.fetched !== undefined && t.computed !== undefined ? t.computed - t.fetched : 0;
      this.platform.observe(Math.max(0, t.resultPublished - t.published - compute) / 1000);
    }
  }
}

function observeStages(histogram: Histogram<'stage'>, timings: Timings): void {
  let previous: number | undefined;
  for (const stage of STAGES) {
    const at = timings[stage];
    if (at === undefined) continue;
    if (previous !== undefined) histogram.observe({ stage }, Math.max(0, at - previous) / 1000);
    previous = at;
  }
}
