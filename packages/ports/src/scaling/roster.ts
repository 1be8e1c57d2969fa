import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { WORKER_POOLS } from '../queue/pools.js';

/**
 * The `WorkerRoster` port: who works in a cluster, kept in the store the roles already
 * share (a SQLite table beside the ledger, a NATS JetStream key-value bucket). Each worker
 * process writes a heartbeat with its pool and state every few seconds and removes it when
 * it stops; the autoscaler writes the count it last decided per pool. A process that dies
 * without a goodbye drops out once its heartbeat is older than `staleAfterMs`.
 *
 * The operations surface (the dashboard role, `arteria loadtest`) reads it instead of
 * scraping each worker's /metrics: it needs no list of the workers' addresses, and it sees
 * the same thing from any replica.
 */
export const WorkerHeartbeat = z.strictObject({
  instanceId: z.string().min(1).max(200),
  pool: z.enum(WORKER_POOLS),
  /** `draining`: finishing its tasks after SIGTERM, leasing no more. */
  state: z.enum(['running', 'draining']),
  /** Task slots of the process (worker.concurrency). */
  concurrency: z.number().int().nonnegative(),
  /** Slots busy now. */
  busy: z.number().int().nonnegative(),
  /** Epoch ms of the heartbeat. */
  at: z.number(),
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

export const DesiredWorkers = z.strictObject({
  pool: z.enum(WORKER_POOLS),
  /** Worker processes (replicas) the autoscaler last decided for the pool. */
  desired: z.number().int().nonnegative(),
  /** The autoscaler instance that decided it. */
  instanceId: z.string().min(1).max(200),
  at: z.number(),
});
export type DesiredWorkers = z.infer<typeof DesiredWorkers>;

/** What the roster holds now: fresh entries only. */
export interface RosterView {
  workers: WorkerHeartbeat[];
  desired: DesiredWorkers[];
}

export interface WorkerRoster {
  /** Writes (or replaces) a worker's heartbeat. */
  beat(worker: WorkerHeartbeat): Promise<void>;
  /** Removes a worker that stops (its heartbeat would otherwise linger until stale). */
  leave(instanceId: string): Promise<void>;
  /** Writes (or replaces) a pool's desired count. */
  recordDesired(desired: DesiredWorkers): Promise<void>;
  /** Fresh heartbeats and desired counts (at most `staleAfterMs` old at `now`). */
  read(now?: number): Promise<RosterView>;
  close(): Promise<void>;
}

/** Checks an entry before it is written: a malformed one is a bug of the writer (INTERNAL). */
export function checkedRosterEntry<T>(schema: z.ZodType<T>, entry: unknown): T {
  const parsed = schema.safeParse(entry);
  if (!parsed.success) throw new ArteriaError('INTERNAL', `malformed worker roster entry: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data;
}

/** How often workers beat; an entry three beats old counts as gone. */
export const ROSTER_BEAT_MS = 5_000;
export const ROSTER_STALE_AFTER_MS = 3 * ROSTER_BEAT_MS;

/** The worker counts of a roster view, in processes (the autoscaler's unit) and slots. */
export function rosterCounts(view: RosterView): { actual: number; desired: number | null; slots: number; busy: number } {
  const running = view.workers.filter((w) => w.state === 'running');
  return {
    actual: running.length,
    desired: view.desired.length === 0 ? null : view.desired.reduce((sum, d) => sum + d.desired, 0),
    slots: running.reduce((sum, w) => sum + w.concurrency, 0),
    busy: view.workers.reduce((sum, w) => sum + w.busy, 0),
  };
}
