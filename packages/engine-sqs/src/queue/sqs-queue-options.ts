import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

const DAY_MS = 24 * 60 * 60 * 1000;
/** SQS queue names: letters, digits, `-` and `_`, at most 80 (the `-dlq` suffix is added to it). */
const NAME = /^[A-Za-z0-9_-]{1,76}$/;

export const SqsWorkQueueOptions = z.strictObject({
  /** SQS endpoint URL; empty for AWS (the SDK's regional endpoint). Test servers need it. */
  endpoint: z.string().default(''),
  region: z.string().min(1).default('us-east-1'),
  /** Static credentials; both empty: the SDK's default chain (environment, profile, role). */
  accessKeyId: z.string().default(''),
  secretAccessKey: z.string().default(''),
  /** Work queue name; the dead-letter queue is `<name>-dlq`. Both are created when missing. */
  name: z.string().regex(NAME).default('arteria-tasks'),
  /** Deliveries after which a task is dead-lettered; also the redrive policy's maxReceiveCount. */
  maxDeliveries: z.number().int().min(1).max(1_000),
  /**
   * SQLite file of the task records (dedupe, lease ownership, pending, dead letters), which
   * SQS cannot hold. Every process sharing the queue must share this file: one machine.
   */
  recordsPath: z.string().min(1),
  /**
   * How a dead letter is committed: `FULL` (default) fsyncs it before the task's message is
   * deleted from SQS (the record is then its only copy). Other record writes use `NORMAL`:
   * SQS holds the task, and a record lost to a power failure is rebuilt from its message.
   */
  recordsSynchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
  /** How long an acked task's dedupeId still dedupes (its record is then removed). */
  dedupeRetentionMs: z.number().int().min(0).default(DAY_MS),
  /**
   * Longest single ReceiveMessage long poll (SQS allows 20 s). A lease whose waitMs is
   * shorter than a second polls every pollIntervalMs instead.
   */
  longPollSeconds: z.number().int().min(1).max(20).default(20),
  /** Between short polls when a lease waits less than a second. */
  pollIntervalMs: z.number().int().min(1).max(60_000).default(100),
  /** How often a leasing process takes tasks the redrive policy moved into the dead-letter queue. */
  deadLetterSweepMs: z.number().int().min(100).max(DAY_MS).default(5_000),
  /** Timeout of each SQS request. */
  requestTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
});
/** Options as a caller writes them (defaults optional). */
export type SqsWorkQueueOptions = z.input<typeof SqsWorkQueueOptions>;
/** Validated options with defaults applied. */
export type SqsWorkQueueConfig = Readonly<z.output<typeof SqsWorkQueueOptions>>;

/** Validates options once (unknown keys rejected) into a frozen config. */
export function compileSqsWorkQueueOptions(input: unknown): SqsWorkQueueConfig {
  const parsed = SqsWorkQueueOptions.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new ArteriaError('CONFIG_INVALID', `SQS work queue option ${where}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  if ((parsed.data.accessKeyId === '') !== (parsed.data.secretAccessKey === '')) {
    throw new ArteriaError('CONFIG_INVALID', 'SQS work queue options accessKeyId and secretAccessKey: give both or neither');
  }
  return Object.freeze(parsed.data);
}
