import { DeviceDirectory } from '../devices/device-directory.js';
import { latencyFromResults } from '../http/dashboard-api.js';
import { OpsHttpServer } from '../http/http-server.js';
import type { LedgerCounts } from '../ledger/index.js';
import { PlatformMetrics } from '../metrics/metrics.js';
import type { QueueStats } from '../queue/index.js';
import type { ClusterConfig } from './cluster-config.js';
import { brokerServicePassword, brokerServiceUsername } from './mosquitto-files.js';
import { runCleanups, type RoleState } from './role-lifecycle.js';
import { StatusSubscriber } from './status-subscriber.js';
import { openSharedStores, type SharedStores } from './stores.js';
import type { RoleDeps } from './worker-role.js';
import { loadMqttTls } from './mqtt-tls.js';

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
  /** busy: tasks leased now (one per busy worker slot); size: not known to the stores. */
  workers: { size: null; busy: number };
  statusConnected: boolean;
}

/**
 * `arteria dashboard`: the operator's page for a cluster, read from the shared queue and
 * ledger and the devices' status topic. It runs nothing and can run as several replicas.
 */
export class DashboardRole {
  #state: RoleState = 'starting';
  readonly http = new OpsHttpServer();
  readonly devices = new DeviceDirectory();
  readonly config: Readonly<ClusterConfig>;
  readonly #cleanups: (() => Promise<void>)[] = [];
  #stores: SharedStores | undefined;
  #status: StatusSubscriber | undefined;
  #closing: Promise<void> | undefined;

  private constructor(config: Readonly<ClusterConfig>) {
    this.config = config;
  }

  static async start(config: Readonly<ClusterConfig>, deps: Omit<RoleDeps, 'algorithmDirs'>): Promise<DashboardRole> {
    const role = new DashboardRole(config);
    try {
      await role.#start(deps);
    } catch (err) {
      await runCleanups(role.#cleanups).catch(() => undefined);
      throw err;
    }
    return role;
  }

  get state(): RoleState {
    return this.#state;
  }

  async status(): Promise<DashboardRoleStatus> {
    const stores = this.#stores;
    if (!stores) throw new Error('dashboard is not started');
    const [requests, queue] = await Promise.all([stores.ledger.counts(), stores.queue.stats()]);
    return {
      role: 'dashboard',
      instanceId: this.config.instanceId,
      state: this.#state,
      devices: this.devices.counts(),
      requests,
      queue,
      workers: { size: null, busy: queue.inFlight },
      statusConnected: this.#status?.connected ?? false,
    };
  }

  async #start(deps: Omit<RoleDeps, 'algorithmDirs'>): Promise<void> {
    const c = this.config;
    const stores = await openSharedStores(c, deps.queueFactories);
    this.#stores = stores;
    this.#cleanups.push(() => stores.close());
    const status = await StatusSubscriber.start(
      { url: c.mqtt.url, tls: await loadMqttTls(c.mqtt), username: brokerServiceUsername('dashboard'), password: brokerServicePassword(deps.platformSecret, 'dashboard'), clientId: `arteria-dashboard-${c.instanceId}`, keepaliveS: c.mqtt.keepaliveS },
      this.devices,
      deps.onError,
    );
    this.#status = status;
    this.#cleanups.push(() => status.close());
    const metrics = new PlatformMetrics({ queue: () => stores.queue.stats(), workers: () => ({ size: 0, busy: 0 }), devicesConnected: () => this.devices.counts().online });
    await this.http.start(
      {
        metrics: metrics.registry,
        status: () => this.status(),
        ready: () => this.#state === 'running',
        dashboard: {
          devices: () => this.devices.list(),
          recent: (limit) => stores.ledger.recent(limit),
          latency: async () => latencyFromResults(await stores.ledger.recent(LATENCY_WINDOW)),
        },
      },
      c.http.host,
      c.http.port,
    );
    this.#cleanups.push(() => this.http.close());
    this.#state = 'running';
  }

  /** Idempotent. */
  async close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'draining';
      try {
        await runCleanups(this.#cleanups);
      } finally {
        this.#state = 'stopped';
      }
    })();
    return this.#closing;
  }
}
