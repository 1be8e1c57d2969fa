import { ArteriaError } from '@arteria/protocol';
import { BacklogPolicy } from '@arteria/scaling';
import { Autoscaler, buildAutoscaler, type AutoscalerDecision, KedaExternalScaler, KubernetesDeploymentTarget, ledgerSignalSource, queueSignalSource } from '@arteria/autoscaler';
import { type ScaleTarget, DeviceDirectory } from '@arteria/ports';
import { PlatformMetrics } from '@arteria/telemetry';
import type { ClusterConfig } from './cluster-config.js';
import { RoleLifecycle, type RoleState } from './role-lifecycle.js';
import { StatusSubscriber, fleetStatusOptions } from './status-subscriber.js';
import { openSharedStores, openWorkerRoster } from './stores.js';
import { DesiredCountWriter } from './roster-writers.js';
import type { RoleDeps } from './worker-role.js';

export interface AutoscalerRoleStatus {
  role: 'autoscaler';
  instanceId: string;
  state: RoleState;
  target: ClusterConfig['autoscale']['target'];
  /** keda: host:port of the external scaler. */
  scalerAddress: string | undefined;
  /** The cpu pool's worker count last decided; undefined before the first tick. */
  workers: number | undefined;
  /** The gpu pool's count last decided, where the deployment has a gpu pool (queue.gpuPool). */
  gpuWorkers?: number | undefined;
  lastDecisionAtMs: number | undefined;
  devices: { known: number; online: number; inProcedure: number };
  statusConnected: boolean;
}

/**
 * `arteria autoscaler`: Arteria's policy run apart from the workers. It reads arrivals and
 * service times from the shared ledger, depth and age from the shared queue, and the
 * devices in a procedure from the status topic (when a broker answers), and applies the computed worker count to
 * KEDA (published through the external scaler) or a Deployment's scale subresource.
 */
export class AutoscalerRole {
  readonly #life = new RoleLifecycle();
  readonly http = this.#life.http;
  readonly devices = new DeviceDirectory();
  readonly config: Readonly<ClusterConfig>;
  #keda: KedaExternalScaler | undefined;
  #status: StatusSubscriber | undefined;
  #last: AutoscalerDecision | undefined;
  #lastGpu: AutoscalerDecision | undefined;

  private constructor(config: Readonly<ClusterConfig>) {
    this.config = config;
  }

  static async start(config: Readonly<ClusterConfig>, deps: Omit<RoleDeps, 'algorithmDirs'>): Promise<AutoscalerRole> {
    const role = new AutoscalerRole(config);
    await role.#life.start(() => role.#start(deps));
    return role;
  }

  get state(): RoleState {
    return this.#life.state;
  }

  /** The KEDA external scaler, when `autoscale.target` is keda. */
  get keda(): KedaExternalScaler | undefined {
    return this.#keda;
  }

  status(): AutoscalerRoleStatus {
    return {
      role: 'autoscaler',
      instanceId: this.config.instanceId,
      state: this.#life.state,
      target: this.config.autoscale.target,
      scalerAddress: this.#keda?.address,
      workers: this.#last?.target,
      ...(this.config.queue.gpuPool ? { gpuWorkers: this.#lastGpu?.target } : {}),
      lastDecisionAtMs: this.#last?.atMs,
      devices: this.devices.counts(),
      statusConnected: this.#status?.connected ?? false,
    };
  }

  async #start(deps: Omit<RoleDeps, 'algorithmDirs'>): Promise<void> {
    const c = this.config;
    const a = c.autoscale;
    const stores = await openSharedStores(c, deps.queueFactories);
    this.#life.defer(() => stores.close());
    // Device status only leads the queue: the autoscaler decides from the queue and ledger
    // alone while no broker answers, and uses status once one does.
    const log = (message: string, level: 'info' | 'warn' = 'info'): void => {
      if (deps.logger) deps.logger[level]({ component: 'device-status' }, message);
      else if (level === 'warn') deps.onError?.(new ArteriaError('BROKER_UNAVAILABLE', message));
    };
    const status = StatusSubscriber.background(await fleetStatusOptions(c, deps.platformSecret, 'autoscaler'), this.devices, log);
    this.#status = status;
    this.#life.defer(() => status.close());
    let target: ScaleTarget;
    let gpuTarget: ScaleTarget;
    if (a.target === 'keda') {
      const keda = await KedaExternalScaler.start({ host: a.grpcHost, port: a.grpcPort, metricName: a.metricName });
      this.#keda = keda;
      this.#life.defer(() => keda.close());
      // KEDA applies the count; start it at the floor so IsActive is right before the first tick.
      // Each pool is answered its own count: the cpu pool's by the queueing model, the gpu
      // pool's from its own queue (or its floor where no GPU algorithm is routed to it).
      await keda.setReplicas(a.minWorkers);
      await keda.setPoolReplicas('gpu', a.gpuMinWorkers);
      target = keda;
      gpuTarget = keda.poolTarget('gpu');
    } else {
      target = await KubernetesDeploymentTarget.open({ namespace: a.namespace, deployment: a.deployment });
      gpuTarget = await KubernetesDeploymentTarget.open({ namespace: a.namespace, deployment: a.gpuDeployment });
    }
    // The desired counts go into the roster, where the dashboard finds them beside the workers' heartbeats.
    const roster = await openWorkerRoster(c);
    this.#life.defer(() => roster.close(), 'worker roster');
    const desired = new DesiredCountWriter(roster, c.instanceId, deps.logger);
    this.#life.defer(() => Promise.resolve(desired.close()), 'desired counts');
    const serviceCv = a.serviceCvPercent / 100;
    const epsilon = 10 ** -a.epsilonExponent;
    const autoscaler = buildAutoscaler(
      {
        target,
        source: ledgerSignalSource({ queue: stores.queue, ledger: stores.ledger, devices: this.devices }),
        onDecision: (d) => {
          if (d.target !== d.previous) deps.logger?.info({ event: 'scale', previous: d.previous, workers: d.target, target: a.target }, `workers ${d.previous} -> ${d.target}`);
          this.#last = d;
          desired.decided('cpu', d.target);
        },
        onError: deps.onError,
      },
      {
        minWorkers: a.minWorkers,
        maxWorkers: a.maxWorkers,
        intervalMs: a.intervalMs,
        waitBudgetMs: a.waitBudgetMs,
        epsilon,
        workerStartupMs: a.workerStartupMs,
        serviceMs: a.serviceMs,
        serviceCv,
        requestsPerRun: a.requestsPerRun,
        scaleInDelayMs: a.scaleInDelayMs,
        rateSmoothingMs: a.rateSmoothingMs,
      },
    );
    const gpuQueue = stores.queues.get('gpu');
    if (gpuQueue !== undefined) {
      // GPU tasks are few and GPU nodes dear: the pool follows its own backlog (one worker
      // per waiting or running task), holds it for scaleInDelayMs, and rests at its floor
      // (0 by default) when its queue is empty.
      const gpuPolicy = new BacklogPolicy({ targetPerWorker: 1, pollMs: 0, stabilizationMs: a.scaleInDelayMs, scaleUpPeriodMs: a.intervalMs, minWorkers: a.gpuMinWorkers, maxWorkers: a.gpuMaxWorkers });
      const gpuScaler = new Autoscaler(
        {
          policy: gpuPolicy,
          target: gpuTarget,
          source: queueSignalSource(gpuQueue),
          onDecision: (d) => {
            if (d.target !== d.previous) deps.logger?.info({ event: 'scale', pool: 'gpu', previous: d.previous, workers: d.target, target: a.target }, `gpu workers ${d.previous} -> ${d.target}`);
            this.#lastGpu = d;
            desired.decided('gpu', d.target);
          },
          onError: deps.onError,
        },
        { intervalMs: a.intervalMs, minWorkers: a.gpuMinWorkers, maxWorkers: a.gpuMaxWorkers, assumedServiceCv: serviceCv },
      );
      await gpuScaler.start();
      this.#life.defer(() => gpuScaler.close());
    }
    const metrics = new PlatformMetrics({ queue: () => stores.queueStats(), desiredWorkers: () => this.#last?.target, devicesConnected: () => this.devices.counts().online });
    await this.#life.serve({ metrics: metrics.registry, status: () => Promise.resolve(this.status()) }, { ...c.http, dataDir: c.dataDir }, undefined, deps.logger);
    await autoscaler.start();
    this.#life.defer(() => autoscaler.close());
  }

  /** Stops deciding, closes the scaler endpoint and the stores. Workers stay as they are. Idempotent. */
  async close(): Promise<void> {
    return this.#life.close(() => Promise.resolve());
  }
}
