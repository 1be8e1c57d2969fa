import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { NatsAuth } from './nats-auth.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** JetStream stream names: no spaces, dots, `*`, `>` or path separators. */
const NAME = /^[A-Za-z0-9_-]{1,48}$/;
/** Subject tokens joined by dots, no wildcards. */
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export const NatsWorkQueueOptions = z.strictObject({
  /** NATS server URLs, e.g. `nats://nats-0:4222`. */
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** Work stream name; the records and dead-letter streams are `<name>_RECORDS` and `<name>_DLQ`. */
  name: z.string().regex(NAME).default('ARTERIA_TASKS'),
  /** Subjects live under this prefix; default `arteria.queue.<name in lower case>`. */
  subjectPrefix: z.string().regex(SUBJECT_PREFIX).optional(),
  /** Deliveries after which a task is dead-lettered instead of redelivered. */
  maxDeliveries: z.number().int().min(1).max(10_000),
  /**
   * The consumers' AckWait: how long a task stays invisible after delivery before a
   * lease sets its own visibility. A lease whose visibilityMs equals it costs one
   * request less. Also bounds how late a task leased by a process that died at once
   * comes back.
   */
  ackWaitMs: z.number().int().min(100).max(DAY_MS).default(30_000),
  /**
   * How often a waiting lease() pulls for work it was not told about: expired leases and
   * tasks nacked without delay in other processes. New tasks (and tasks whose delay ran
   * out) wake waiting leasers at once. Each waiting process pulls this often when idle.
   */
  pollIntervalMs: z.number().int().min(1).max(60_000).default(250),
  /** How long a task's dedupeId keeps deduping after it was enqueued (records stream max age). */
  dedupeRetentionMs: z.number().int().min(1_000).default(DAY_MS),
  /** JetStream's own `Nats-Msg-Id` window on the work stream (the fast path for retries). */
  duplicateWindowMs: z.number().int().min(1_000).max(DAY_MS).default(120_000),
  /** How long dead letters are kept; 0 keeps them until an operator purges them. */
  deadLetterRetentionMs: z.number().int().min(0).default(30 * DAY_MS),
  /** Stream replicas (1, or 3 in a cluster). */
  replicas: z.number().int().min(1).max(5).default(1),
  /** `file` for anything that must survive a restart. */
  storage: z.enum(['file', 'memory']).default('file'),
  /** Timeout of each JetStream API request and acknowledgement. */
  requestTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
  /** Connection name shown by the server's monitoring. */
  connectionName: z.string().min(1).max(128).optional(),
  /** Credentials; none: the server's `no_auth_user`. */
  auth: NatsAuth.optional(),
});
/** Options as a caller writes them (defaults optional). */
export type NatsWorkQueueOptions = z.input<typeof NatsWorkQueueOptions>;
/** Validated options with defaults applied and the subject prefix resolved. */
export type NatsWorkQueueConfig = Readonly<z.output<typeof NatsWorkQueueOptions> & { subjectPrefix: string }>;

/** Validates options once (unknown keys rejected) into a frozen config. */
export function compileNatsWorkQueueOptions(input: unknown): NatsWorkQueueConfig {
  const parsed = NatsWorkQueueOptions.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new ArteriaError('CONFIG_INVALID', `NATS work queue option ${where}: ${issue?.message ?? 'invalid'}`, {
      cause: parsed.error,
    });
  }
  const data = parsed.data;
  if (data.duplicateWindowMs > data.dedupeRetentionMs) {
    throw new ArteriaError('CONFIG_INVALID', 'NATS work queue option duplicateWindowMs: must not exceed dedupeRetentionMs');
  }
  return Object.freeze({ ...data, subjectPrefix: data.subjectPrefix ?? `arteria.queue.${data.name.toLowerCase()}` });
}
