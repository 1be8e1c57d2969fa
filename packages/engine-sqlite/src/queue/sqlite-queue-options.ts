import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

const DAY_MS = 24 * 60 * 60 * 1000;

export const SqliteWorkQueueOptions = z.strictObject({
  /** Database file; several processes may share it. */
  path: z.string().min(1),
  /**
   * The queue's name in the file: its tables are `<name>_tasks`, `<name>_dead_letters` and
   * `<name>_dedupe`, so one file holds several queues (one per worker pool, `queue_gpu`).
   */
  name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/).default('queue'),
  /** Deliveries after which a task is dead-lettered instead of redelivered. */
  maxDeliveries: z.number().int().min(1).max(10_000),
  /**
   * How often this instance looks at the file, while leases wait, for work it was not told
   * about: tasks enqueued by other processes, delays and visibility timeouts that ran out
   * (one look for all its waiting leases). Work enqueued through this instance wakes one
   * waiting lease per task at once.
   */
  pollIntervalMs: z.number().int().min(1).max(60_000).default(50),
  /** `FULL` (default) loses nothing acknowledged; see SqliteSynchronous for `NORMAL`. */
  synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
  /** How long an acked or dead-lettered task's dedupeId still dedupes. */
  dedupeRetentionMs: z.number().int().min(0).default(DAY_MS),
});
/** Options as a caller writes them (defaults optional). */
export type SqliteWorkQueueOptions = z.input<typeof SqliteWorkQueueOptions>;
/** Validated options with defaults applied. */
export type SqliteWorkQueueConfig = Readonly<z.output<typeof SqliteWorkQueueOptions>>;

/** Validates options once (unknown keys rejected) into a frozen config. */
export function compileSqliteWorkQueueOptions(input: unknown): SqliteWorkQueueConfig {
  const parsed = SqliteWorkQueueOptions.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new ArteriaError('CONFIG_INVALID', `SQLite work queue option ${where}: ${issue?.message ?? 'invalid'}`, {
      cause: parsed.error,
    });
  }
  return Object.freeze(parsed.data);
}
