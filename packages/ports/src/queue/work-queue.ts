/**
 * The work-queue port. Adapters: SQLite (embedded), NATS JetStream (cluster), SQS. Every
 * adapter passes the same conformance suite (test/queue-conformance.ts).
 *
 * Semantics: at-least-once. A leased task is invisible for `visibilityMs`; if not acked
 * or extended by then it is delivered again. After `maxDeliveries` deliveries without an
 * ack it moves to the dead-letter store with a reason. Enqueue is idempotent per
 * `dedupeId` for as long as the task exists (and the adapter's dedupe window after).
 */
export interface EnqueueOptions {
  dedupeId: string;
  /** Make the task visible only after this delay. */
  delayMs?: number;
}

export interface EnqueueResult {
  /** False when a task with the same dedupeId already exists: nothing was added. */
  enqueued: boolean;
  taskId: string;
}

export interface Lease {
  taskId: string;
  dedupeId: string;
  payload: Buffer;
  /** 1 on first delivery. */
  deliveries: number;
  enqueuedAt: number;
  /** Opaque token: ack/extend/nack with a stale token (lease expired, re-leased) fail with LEASE_LOST. */
  token: string;
}

export interface LeaseOptions {
  /** Most tasks to return. */
  max: number;
  visibilityMs: number;
  /** Wait up to this long for work when none is ready (long poll); 0 returns at once. */
  waitMs: number;
  /** Aborting ends the wait: lease() resolves with [] and leases nothing. */
  signal?: AbortSignal;
}

export interface QueueStats {
  /** Ready to lease now. */
  ready: number;
  /** Leased and not yet acked. */
  inFlight: number;
  /** Waiting for a nack delay or enqueue delay to pass. */
  delayed: number;
  deadLettered: number;
  /**
   * Age of the oldest task not yet acked (ready, in flight, or delayed after a delivery), 0
   * when empty. A task queued for later (enqueue's delayMs, such as a segmented run's idle
   * look) counts only once it is due: it is not work waiting.
   */
  oldestAgeMs: number;
}

export interface DeadLetter {
  taskId: string;
  dedupeId: string;
  payload: Buffer;
  deliveries: number;
  reason: string;
  /** Epoch ms it was dead-lettered. */
  at: number;
  /** Epoch ms it was first enqueued. */
  enqueuedAt: number;
}

export interface WorkQueue {
  readonly kind: string;
  enqueue(payload: Buffer, options: EnqueueOptions): Promise<EnqueueResult>;
  lease(options: LeaseOptions): Promise<Lease[]>;
  extend(lease: Lease, visibilityMs: number): Promise<void>;
  ack(lease: Lease): Promise<void>;
  /** Return the task for redelivery after `delayMs`; counts as a delivery. */
  nack(lease: Lease, options: { delayMs: number; reason: string }): Promise<void>;
  /** Move the task to the dead-letter store at once. */
  deadLetter(lease: Lease, reason: string): Promise<void>;
  stats(): Promise<QueueStats>;
  /**
   * Whether the task with this dedupeId is still to be settled (ready, delayed or leased):
   * a worker will still publish its result. False once acked or dead-lettered, or unknown.
   */
  pending(dedupeId: string): Promise<boolean>;
  /** Newest first. */
  deadLetters(limit: number): Promise<DeadLetter[]>;
  /** One dead letter by its task id; undefined when there is none (never was, or removed). */
  findDeadLetter(taskId: string): Promise<DeadLetter | undefined>;
  /** Removes a dead letter (once it was replayed or given up); false when there was none. */
  removeDeadLetter(taskId: string): Promise<boolean>;
  /** Idempotent; pending lease() calls resolve with []. */
  close(): Promise<void>;
}

export interface WorkQueueOptions {
  /** Deliveries after which a task is dead-lettered instead of redelivered. */
  maxDeliveries: number;
}
