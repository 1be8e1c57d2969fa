import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError, closeFailed } from '@arteria/protocol';
import { LEDGER_KEY_FILE, loadOrCreateLedgerSigner, type AuditSource, type ObjectBucket, type QueueStats, type RequestLedger, type RunCheckpointStore, type WorkerPoolName, type WorkerRoster, type WorkQueue } from '@arteria/ports';
import { SqliteRequestLedger, SqliteRunCheckpoints, SqliteWorkQueue, SqliteWorkerRoster } from '@arteria/engine-sqlite';
import { NatsRunCheckpoints, NatsWorkQueue, NatsWorkerRoster, readNatsAuth, NatsRequestLedger } from '@arteria/engine-nats';
import { SqsWorkQueue } from '@arteria/engine-sqs';
import type { ClusterConfig } from './cluster-config.js';

const natsServers = (config: Readonly<ClusterConfig>): string[] => config.queue.natsServers.split(',').map((s) => s.trim()).filter((s) => s !== '');

/**
 * The queue and ledger every role of one deployment shares. SQLite serves processes on
 * one machine (one file, WAL); across machines the queue is NATS JetStream and the ledger
 * a shared database (see docs/operations.md).
 */
export interface SharedStores {
  /** The queue of the first pool opened (the cpu pool's unless the role asked for others). */
  queue: WorkQueue;
  /** Each opened pool's queue. */
  queues: ReadonlyMap<WorkerPoolName, WorkQueue>;
  /** Every opened pool's queue counted together (what an operator means by queue depth). */
  queueStats(): Promise<QueueStats>;
  ledger: RequestLedger;
  /** The ledger's chain records, as `arteria audit` reads them (the dashboard's request page). */
  audit: AuditSource;
  /** Checks a chain record's signature under this deployment's ledger key. */
  verifyRecord: (hash: string, signature: string) => boolean;
  close(): Promise<void>;
}

/** Counts of several queues together; the oldest task is the oldest of any. */
export function sumQueueStats(all: readonly QueueStats[]): QueueStats {
  const sum: QueueStats = { ready: 0, inFlight: 0, delayed: 0, deadLettered: 0, oldestAgeMs: 0 };
  for (const s of all) {
    sum.ready += s.ready;
    sum.inFlight += s.inFlight;
    sum.delayed += s.delayed;
    sum.deadLettered += s.deadLettered;
    sum.oldestAgeMs = Math.max(sum.oldestAgeMs, s.oldestAgeMs);
  }
  return sum;
}

/** Opens a queue adapter by kind, in place of the built-in ones (tests, other engines). */
export type QueueFactory = (config: Readonly<ClusterConfig>, pool: WorkerPoolName) => Promise<WorkQueue>;

/**
 * The pools whose queues a role opens by default: the cpu pool, and the gpu pool where
 * `queue.gpuPool` routes GPU algorithms to it.
 */
export const configuredPools = (config: Readonly<ClusterConfig>): WorkerPoolName[] => (config.queue.gpuPool ? ['cpu', 'gpu'] : ['cpu']);

/** A worker process opens only its own pool's queue: a cpu worker never leases a task routed to the gpu pool. */
export const workerPools = (config: Readonly<ClusterConfig>): WorkerPoolName[] => [config.worker.pool];

/**
 * A pool's queue name on each engine: the cpu pool keeps the configured names (existing
 * deployments keep their queues), the others add the pool (`ARTERIA_TASKS_GPU`,
 * `arteria-tasks-gpu`, SQLite tables `queue_gpu_*`).
 */
export function poolQueueName(kind: ClusterConfig['queue']['kind'], base: string, pool: WorkerPoolName): string {
  if (pool === 'cpu') return base;
  if (kind === 'nats') return `${base}_${pool.toUpperCase()}`;
  if (kind === 'sqs') return `${base}-${pool}`;
  return `${base}_${pool}`;
}

/** The ledger's signing key file of a deployment. */
export const ledgerKeyFile = (config: Readonly<ClusterConfig>): string =>
  config.ledger.signingKeyFile === '' ? path.join(path.resolve(config.dataDir), LEDGER_KEY_FILE) : path.resolve(config.ledger.signingKeyFile);

/** The SQLite file of a deployment's ledger (kind sqlite). */
export const sqliteLedgerPath = (config: Readonly<ClusterConfig>): string => {
  const queueFile = config.queue.path === '' ? path.join(path.resolve(config.dataDir), 'platform.db') : path.resolve(config.queue.path);
  return config.ledger.path === '' ? queueFile : path.resolve(config.ledger.path);
};

export async function openSharedStores(
  config: Readonly<ClusterConfig>,
  queueFactories: Partial<Record<ClusterConfig['queue']['kind'], QueueFactory>> = {},
  pools: readonly WorkerPoolName[] = configuredPools(config),
): Promise<SharedStores> {
  const dataDir = path.resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const sqlitePath = config.queue.path === '' ? path.join(dataDir, 'platform.db') : path.resolve(config.queue.path);
  const auth = config.queue.kind === 'nats' || config.ledger.kind === 'nats' ? await readNatsAuth(config.nats) : undefined;
  const factory = queueFactories[config.queue.kind];
  const openQueue = async (pool: WorkerPoolName): Promise<WorkQueue> => {
    if (factory !== undefined) return factory(config, pool);
    if (config.queue.kind === 'sqlite') return new SqliteWorkQueue({ path: sqlitePath, name: poolQueueName('sqlite', 'queue', pool), maxDeliveries: config.queue.maxDeliveries, synchronous: config.queue.synchronous });
    if (config.queue.kind === 'nats') {
      return NatsWorkQueue.open({
        servers: natsServers(config),
        name: poolQueueName('nats', config.queue.natsStream, pool),
        maxDeliveries: config.queue.maxDeliveries,
        // A lease at the worker's visibility then needs no extra request.
        ackWaitMs: config.worker.visibilityMs,
        connectionName: `arteria-${config.instanceId}${pool === 'cpu' ? '' : `-${pool}`}`,
        ...(auth ? { auth } : {}),
      });
    }
    if (config.queue.kind === 'sqs') {
      return SqsWorkQueue.open({
        endpoint: config.queue.sqsEndpoint,
        region: config.queue.sqsRegion,
        name: poolQueueName('sqs', config.queue.sqsName, pool),
        accessKeyId: config.queue.sqsAccessKeyId,
        secretAccessKey: config.queue.sqsSecretAccessKey,
        maxDeliveries: config.queue.maxDeliveries,
        // Its task records share the deployment's SQLite file (tables of their own).
        recordsPath: sqlitePath,
        recordsSynchronous: config.queue.synchronous,
      });
    }
    throw new ArteriaError('CONFIG_INVALID', `queue.kind ${String(config.queue.kind)}: this build has no adapter for it`);
  };
  const queues = new Map<WorkerPoolName, WorkQueue>();
  const closeQueues = (): Promise<unknown> => Promise.allSettled([...queues.values()].map((q) => q.close()));
  try {
    for (const pool of new Set(pools)) queues.set(pool, await openQueue(pool));
  } catch (err) {
    await closeQueues();
    throw err;
  }
  const queue = queues.get(pools[0] ?? 'cpu');
  if (queue === undefined) throw new ArteriaError('CONFIG_INVALID', 'a role must open at least one pool\'s queue');
  let ledger: SqliteRequestLedger | NatsRequestLedger;
  let signer: Awaited<ReturnType<typeof loadOrCreateLedgerSigner>>;
  try {
    signer = await loadOrCreateLedgerSigner(ledgerKeyFile(config));
    if (config.ledger.kind === 'nats') {
      ledger = await NatsRequestLedger.open({ servers: natsServers(config), stream: config.ledger.natsStream, connectionName: `arteria-${config.instanceId}-ledger`, signer, ...(auth ? { auth } : {}) });
    } else {
      // NORMAL when it shares the SQLite queue's file: the queue's durable enqueue right after syncs it too.
      const ledgerPath = config.ledger.path === '' ? sqlitePath : path.resolve(config.ledger.path);
      ledger = new SqliteRequestLedger({ path: ledgerPath, synchronous: config.queue.kind === 'sqlite' && ledgerPath === sqlitePath ? 'NORMAL' : 'FULL', signer });
    }
  } catch (err) {
    await closeQueues();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    queue,
    queues,
    queueStats: async () => sumQueueStats(await Promise.all([...queues.values()].map((q) => q.stats()))),
    ledger,
    audit: ledger.auditSource(),
    verifyRecord: signer.recordVerifier,
    close() {
      closing ??= Promise.allSettled([ledger.close(), ...[...queues.values()].map((q) => q.close())]).then((outcomes) => {
        const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed.length > 0) throw closeFailed('the shared stores', failed.map((f): unknown => f.reason));
      });
      return closing;
    },
  };
}

/**
 * The worker roster (heartbeats of worker processes, the autoscaler's desired counts) in
 * the store the ledger lives in: the ledger's SQLite file, or a JetStream key-value bucket
 * on the ledger's NATS servers. Opened by the workers, the autoscaler and the dashboard.
 */
export async function openWorkerRoster(config: Readonly<ClusterConfig>): Promise<WorkerRoster> {
  if (config.ledger.kind === 'nats') {
    const auth = await readNatsAuth(config.nats);
    return NatsWorkerRoster.open({ servers: natsServers(config), connectionName: `arteria-${config.instanceId}-roster`, ...(auth ? { auth } : {}) });
  }
  await mkdir(path.resolve(config.dataDir), { recursive: true });
  return new SqliteWorkerRoster({ path: sqliteLedgerPath(config) });
}

/**
 * The checkpoints of segmented runs, shared by every worker of the deployment, where the
 * ledger lives (every worker already reaches it): the ledger's SQLite file, or on the
 * ledger's NATS servers a JetStream key-value bucket (ARTERIA_CHECKPOINTS) for the
 * compare-and-set entries, with states too large for an entry in `objects` (the runs
 * bucket, under `_checkpoints/`).
 */
export async function openRunCheckpoints(config: Readonly<ClusterConfig>, objects: ObjectBucket): Promise<RunCheckpointStore> {
  if (config.ledger.kind === 'nats') {
    const auth = await readNatsAuth(config.nats);
    return NatsRunCheckpoints.open({ servers: natsServers(config), objects, connectionName: `arteria-${config.instanceId}-checkpoints`, ...(auth ? { auth } : {}) });
  }
  await mkdir(path.resolve(config.dataDir), { recursive: true });
  return new SqliteRunCheckpoints({ path: sqliteLedgerPath(config) });
}
