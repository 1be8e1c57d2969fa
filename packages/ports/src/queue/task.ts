import { z } from 'zod';
import { AlgorithmRef, RequestV1, TraceContext } from '@arteria/protocol';

/**
 * What ingest puts on the work queue: the validated request plus the algorithm version
 * pinned at admission, so a release that lands while the task waits cannot change
 * which version answers it.
 */
export const TaskV1 = z.strictObject({
  v: z.literal(1),
  request: RequestV1,
  algorithm: AlgorithmRef,
  /**
   * `allow`: the tenant lets inputs that do not declare de-identification run. Absent: the
   * worker refuses them (DEIDENTIFICATION_MISSING). Set by ingest from the tenant's policy.
   */
  identifiedInputs: z.literal('allow').optional(),
  /** The request's trace with admission's span as the parent (absent when the request carried none and tracing is off). */
  trace: TraceContext.optional(),
});
export type TaskV1 = z.infer<typeof TaskV1>;

export const encodeTask = (task: TaskV1): Buffer => Buffer.from(JSON.stringify(task), 'utf8');

export function decodeTask(payload: Buffer): TaskV1 {
  return TaskV1.parse(JSON.parse(payload.toString('utf8')));
}
