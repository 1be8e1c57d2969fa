import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError, closeFailed } from '@arteria/protocol';
import { LEDGER_KEY_FILE, loadOrCreateLedgerSigner, type AuditSource, type RequestLedger, type WorkQueue } from '@arteria/ports';
import { SqliteRequestLedger, SqliteWorkQueue } from '@arteria/engine-sqlite';
import { NatsWorkQueue, readNatsAuth, NatsRequestLedger } from '@arteria/engine-nats';
import { SqsWorkQueue } from '@arteria/engine-sqs';
import type { ClusterConfig } from './cluster-config.js';

const natsServers = (config: Readonly<ClusterConfig>): string[] => config.queue.natsServers.split(',').map((s) => s.trim()).filter((s) => s !== '');

/**
 * The queue and ledger every role of one deployment shares. SQLite serves processes on
 * one machine (one file, WAL); across machines the queue is NATS JetStream and the ledger
 * a shared database (see docs/operations.md).
 */
export interface SharedStores {
  queue: WorkQueue;
  ledger: RequestLedger;
  /** The ledger's chain records, as `arteria audit` reads them (the dashboard's request page). */
  audit: AuditSource;
  /** Checks a chain record's signature under this deployment's ledger key. */
  verifyRecord: (hash: string, signature: string) => boolean;
  close(): Promise<void>;
}

/** Opens a queue adapter by kind, in place of the built-in ones (tests, other engines). */
export type QueueFactory = (config: Readonly<ClusterConfig>) => Promise<WorkQueue>;

/** The ledger's signing key file of a deployment. */
export const ledgerKeyFile = (config: Readonly<ClusterConfig>): string =>
  config.ledger.signingKeyFile === '' ? path.join(path.resolve(config.dataDir), LEDGER_KEY_FILE) : path.resolve(config.ledger.signingKeyFile);

/** The SQLite file of a deployment's ledger (kind sqlite). */
export const sqliteLedgerPath = (config: Readonly<ClusterConfig>): string => {
  const queueFile = config.queue.path === '' ? path.join(path.resolve(config.dataDir), 'platform.db') : path.resolve(config.queue.path);
  return config.ledger.path === '' ? queueFile : path.resolve(config.ledger.path);
};

export async function openSharedStores(config: Readonly<ClusterConfig>, queueFactories: Partial<Record<ClusterConfig['queue']['kind'], QueueFactory>> = {}): Promise<SharedStores> {
  const dataDir = path.resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true });
  const sqlitePath = config.queue.path === '' ? path.join(dataDir, 'platform.db') : path.resolve(config.queue.path);
  const auth = config.queue.kind === 'nats' || config.ledger.kind === 'nats' ? await readNatsAuth(config.nats) : undefined;
  const factory = queueFactories[config.queue.kind];
  let queue: WorkQueue;
  if (factory !== undefined) queue = await factory(config);
  else if (config.queue.kind === 'sqlite') queue = new SqliteWorkQueue({ path: sqlitePath, maxDeliveries: config.queue.maxDeliveries, synchronous: config.queue.synchronous });
  else if (config.queue.kind === 'nats') {
    queue = await NatsWorkQueue.open({
      servers: natsServers(config),
      name: config.queue.natsStream,
      maxDeliveries: config.queue.maxDeliveries,
      // A lease at the worker's visibility then needs no extra request.
      ackWaitMs: config.worker.visibilityMs,
      connectionName: `arteria-${config.instanceId}`,
      ...(auth ? { auth } : {}),
    });
  } else if (config.queue.kind === 'sqs') {
    queue = await SqsWorkQueue.open({
      endpoint: config.queue.sqsEndpoint,
      region: config.queue.sqsRegion,
      name: config.queue.sqsName,
      accessKeyId: config.queue.sqsAccessKeyId,
      secretAccessKey: config.queue.sqsSecretAccessKey,
      maxDeliveries: config.queue.maxDeliveries,
      // Its task records share the deployment's SQLite file (tables of their own).
      recordsPath: sqlitePath,
      recordsSynchronous: config.queue.synchronous,
    });
  } else throw new ArteriaError('CONFIG_INVALID', `queue.kind ${String(config.queue.kind)}: this build has no adapter for it`);
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
    await queue.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    queue,
    ledger,
    audit: ledger.auditSource(),
    verifyRecord: signer.recordVerifier,
    close() {
      closing ??= Promise.allSettled([ledger.close(), queue.close()]).then((outcomes) => {
        const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        if (failed.length > 0) throw closeFailed('the shared stores', failed.map((f): unknown => f.reason));
      });
      return closing;
    },
  };
}
