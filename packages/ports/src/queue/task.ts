import { z } from 'zod';
import { AlgorithmRef, RequestV1, SegmentRef, TraceContext } from '@arteria/protocol';

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
  /**
   * A step of a segmented run (docs/protocol.md, "Segmented runs"): `open` (dedupe id: the
   * request id), each `segment` (`{id}.s{index}`), the `end` (`{id}.end`), and `abandon`
   * (`{id}.abandon`), queued once the run's abandonment, or a refused step that ended it, is recorded. Absent: a
   * whole-file request.
   */
  segmented: z
    .discriminatedUnion('phase', [
      z.strictObject({ phase: z.literal('open') }),
      z.strictObject({ phase: z.literal('segment'), index: z.number().int().nonnegative(), firstFrame: z.number().int().nonnegative(), frameCount: z.number().int().positive(), object: SegmentRef, acquired: z.number().nonnegative().optional() }),
      z.strictObject({ phase: z.literal('end'), segments: z.number().int().positive(), frames: z.number().int().positive(), digest: z.string().regex(/^[0-9a-f]{64}$/), acquired: z.number().nonnegative().optional() }),
      /** The run ended at ingest (abandoned by its device, or a refused step; its result is recorded): whoever leases it releases the run's state. */
      z.strictObject({ phase: z.literal('abandon') }),
      /**
       * A look at whether the run is idle: queued by the open step, a run idle time later,
       * then by each look that finds it moved on (`next`: the segments folded at the last
       * look; `check`: the looks so far). An idle run ends RUN_EXPIRED.
       */
      z.strictObject({ phase: z.literal('expire'), next: z.number().int().nonnegative(), check: z.number().int().nonnegative() }),
    ])
    .optional(),
});
export type TaskV1 = z.infer<typeof TaskV1>;

export const encodeTask = (task: TaskV1): Buffer => Buffer.from(JSON.stringify(task), 'utf8');

export function decodeTask(payload: Buffer): TaskV1 {
  return TaskV1.parse(JSON.parse(payload.toString('utf8')));
}

export type SegmentedStep = NonNullable<TaskV1['segmented']>;

/** The queue's dedupe id of a segmented run's step: the open step shares the request's id. */
export function segmentedDedupeId(requestId: string, step: SegmentedStep): string {
  switch (step.phase) {
    case 'open':
      return requestId;
    case 'segment':
      return `${requestId}.s${step.index}`;
    case 'end':
      return `${requestId}.end`;
    case 'abandon':
      return `${requestId}.abandon`;
    case 'expire':
      return `${requestId}.expire.${step.check}`;
  }
}
