import { toArteriaError, ArteriaError } from '@arteria/protocol';
import { DeviceDirectory, rosterCounts, type LedgerCounts, type QueueStats, type RosterView, type WorkerRoster } from '@arteria/ports';
import { buildDashboard, latencyFromResults, LedgerHistoryFeed } from '@arteria/operations';
import { PlatformMetrics, MetricHistory } from '@arteria/telemetry';
import { DeadLetterDesk } from '@arteria/ingest';
import type { ClusterConfig } from './cluster-config.js';
import { RoleLifecycle, type RoleState } from './role-lifecycle.js';
import { StatusSubscriber, startFleetStatus } from './status-subscriber.js';
import { openSharedStores, openWorkerRoster, type SharedStores } from './stores.js';
import type { RoleDeps } from './worker-role.js';

/** Ledger entries the latency chart is computed from. */
const LATENCY_WINDOW = 500;

/** The embedded platform's status shape, as far as the shared stores and the status topic tell it. */
export interface DashboardRoleStatus {
  role: 'dashboard';
  instanceId: string;
  state: RoleState;
  devices: { known: number; online: number; inProcedure: number };
  requests: LedgerCounts;
  queue: QueueStats;
  /**
   * From the worker roster (heartbeats in the shared store): size, the task slots of the
   * running worker processes; busy, tasks leased now (the queue's in-flight count);
   * processes, the running worker processes; desired, the autoscaler's last count (summed
   * over pools; null when no autoscaler records one); roster, each live worker.
   */
  workers: { size: number; busy: number; processes: number; desired: number | null; roster: RosterView['workers'] };
  statusConnected: boolean;
}

/**
 * `arteria dashboard`: the operator's page for a cluster, read from the shared queue and
 * ledger and the devices' status topic. It runs nothing and can run as several replicas.
 */
export class DashboardRole {
  readonly #life = new RoleLifecycle();
  readonly http = this.#life.http;
  readonly devices = new DeviceDirectory();
  readonly config: Readonly<ClusterConfig>;
  #stores: SharedStores | undefined;
  #status: StatusSubscriber | undefined;
  #roster: WorkerRoster | undefined;

  private constructor(config: Readonly<ClusterConfig>) {
    this.config = config;
  }

  static async start(config: Readonly<ClusterConfig>, deps: Omit<RoleDeps, 'algorithmDirs'>): Promise<DashboardRole> {
    const role = new DashboardRole(config);
    await role.#life.start(() => role.#start(deps));
    return role;
  }

  get state(): RoleState {
    return this.#life.state;
  }

  async status(): Promise<DashboardRoleStatus> {
    const stores = this.#stores;
    if (!stores) throw new ArteriaError('ILLEGAL_STATE', 'dashboard is not started: cannot read its stores');
    const roster = this.#roster;
    if (!roster) throw new ArteriaError('ILLEGAL_STATE', 'dashboard is not started: cannot read the worker roster');
    const [requests, queue, view] = await Promise.all([stores.ledger.counts(), stores.queueStats(), roster.read()]);
    const counts = rosterCounts(view);
    return {
      role: 'dashboard',
      instanceId: this.config.instanceId,
      state: this.#life.state,
      devices: this.devices.counts(),
      requests,
      queue,
      workers: { size: counts.slots, busy: queue.inFlight, processes: counts.actual, desired: counts.desired, roster: view.workers },
      statusConnected: this.#status?.connected ?? false,
    };
  }

  async #start(deps: Omit<RoleDeps, 'algorithmDirs'>): Promise<void> {
    const c = this.config;
    const stores = await openSharedStores(c, deps.queueFactories);
    this.#stores = stores;
    this.#life.defer(() => stores.close());
    const status = await startFleetStatus(c, deps.platformSecret, 'dashboard', this.devices, deps.onError);
    this.#status = status;
    this.#life.defer(() => status.close());
    const roster = await openWorkerRoster(c);
    this.#roster = roster;
    this.#life.defer(() => roster.close(), 'worker roster');
    const metrics = new PlatformMetrics({ queue: () => stores.queueStats(), devicesConnected: () => this.devices.counts().online });
    // Results come from many workers: the history is read from the shared ledger.
    const history = new MetricHistory();
    const feed = new LedgerHistoryFeed(stores.ledger, history);
    history.sampleEvery(async () => {
      await feed.poll();
      const [q, view] = await Promise.all([stores.queueStats(), roster.read()]);
      // Processes, the unit the autoscaler decides in: heartbeats of running workers, and the recorded wish.
      const counts = rosterCounts(view);
      return { queueReady: q.ready, inFlight: q.inFlight, workersActual: counts.actual, workersDesired: counts.desired };
    }, (err) => deps.onError?.(toArteriaError(err)));
    this.#life.defer(() => Promise.resolve(history.stop()));
    const desk = new DeadLetterDesk({ queues: stores.queues, ledger: stores.ledger });
    await this.#life.serve(
      {
        metrics: metrics.registry,
        status: () => this.status(),
        dashboard: buildDashboard({
          devices: this.devices,
          ledger: stores.ledger,
          audit: stores.audit,
          verifyRecord: stores.verifyRecord,
          history,
          desk,
          latency: async () => latencyFromResults(await stores.ledger.recent(LATENCY_WINDOW)),
          // No registry or entitlements here: list and inspect; replay is `arteria dlq replay`.
          replay: false,
        }),
      },
      { ...c.http, dataDir: c.dataDir },
      undefined,
      deps.logger,
    );
  }

  /** Idempotent. */
  async close(): Promise<void> {
    return this.#life.close(() => Promise.resolve());
  }
}
