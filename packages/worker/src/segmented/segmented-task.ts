import { ArteriaError, INPUT_ERROR_CODES, epochNow, toArteriaError, type ResultV1 } from '@arteria/protocol';
import { encodeTask, segmentedDedupeId, type Lease, type SegmentedStep, type TaskV1, type WorkQueue } from '@arteria/ports';
import type { SegmentedSteps } from './segmented-steps.js';
import { lostLease, startLeaseHeartbeat, type LeaseHold } from '../lease-heartbeat.js';

export interface SegmentedTaskContext {
  queue: WorkQueue;
  /** Absent: this worker does not run segmented runs (NOT_INCREMENTAL). */
  steps: SegmentedSteps | undefined;
  /** How long the step's lease is surely held; its heartbeat extends it. */
  hold: LeaseHold;
  maxDeliveries: number;
  /** A run that folds no new segment for this long ends RUN_EXPIRED (default 30 min). */
  runIdleMs?: number;
  /**
   * Records the final result, publishes it and settles the task (the worker's own delivery),
   * calling `release` after publishing and before settling. When another delivery holds
   * the task now, that one publishes and releases.
   */
  deliver: (result: ResultV1, release: () => Promise<void>) => Promise<void>;
  onRetry: (error: ArteriaError, delayMs: number) => void;
  /** A lease extension failed for another reason than a lost lease; the step goes on. */
  onMissedBeat: (error: ArteriaError) => void;
}

/**
 * One leased step of a segmented run: heartbeat while it works, acknowledge a step that
 * leaves the run unfinished, deliver the final result (or the error that ended the run)
 * through the worker's record-then-publish path, retry a retryable failure with backoff.
 */
export async function runSegmentedTask(lease: Lease, task: TaskV1, leased: number, context: SegmentedTaskContext): Promise<void> {
  const { queue, steps } = context;
  const { request, algorithm } = task;
  const work = new AbortController();
  const stopHeartbeat = startLeaseHeartbeat(queue, lease, context.hold, work, context.onMissedBeat);
  let result: ResultV1;
  try {
    if (steps === undefined) throw new ArteriaError('NOT_INCREMENTAL', 'the workers of this platform do not run segmented runs; send the whole run');
    const idleMs = context.runIdleMs ?? DEFAULT_RUN_IDLE_MS;
    if (task.segmented?.phase === 'expire') {
      const expired = await expiry(task, task.segmented, steps, queue, idleMs);
      if (expired === undefined) {
        await queue.ack(lease);
        return;
      }
      result = { ...expired, timings: { ...expired.timings, leased } };
    } else {
      const outcome = await steps.handle(task, work.signal);
      if (outcome.kind === 'answered') {
        // A late step of a run answered meanwhile: nothing of it was kept, nothing to deliver.
        await queue.ack(lease);
        return;
      }
      if (outcome.kind === 'settled') {
        // An opened run is looked at once it could have been idle for long enough (queued before the ack: a crash in between queues it again).
        if (task.segmented?.phase === 'open') await lookLater(task, { phase: 'expire', next: 0, check: 0 }, queue, idleMs);
        await queue.ack(lease);
        return;
      }
      result = { ...outcome.result, timings: { ...outcome.result.timings, leased } };
    }
  } catch (err) {
    const error = toArteriaError(err);
    // Another delivery holds the step now and answers for it: recording this one's
    // LEASE_LOST would make it the run's answer (the first recorded result stands).
    if (lostLease(error, work.signal)) return;
    if (error.retryable && lease.deliveries < context.maxDeliveries) {
      const delayMs = Math.min(30_000, 250 * 2 ** (lease.deliveries - 1));
      context.onRetry(error, delayMs);
      await queue.nack(lease, { delayMs, reason: `${error.code}: ${error.message}` });
      return;
    }
    const code = error.retryable ? 'DEAD_LETTERED' : error.code;
    const message = error.retryable ? `gave up after ${lease.deliveries} deliveries: ${error.code}: ${error.message}` : error.message;
    const status = INPUT_ERROR_CODES.has(error.code) || error.code === 'NOT_AUTHORIZED' ? 'rejected' : 'failed';
    result = { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status, algorithm, error: { code, message: message.slice(0, 2000) }, timings: { ...request.timings, leased, computed: epochNow() } };
  } finally {
    stopHeartbeat();
  }
  // Recorded and published: the run's checkpoint goes before the step is acknowledged, so a
  // worker that dies in between leaves the step, whose redelivery forgets the run (the
  // result is recorded), never a checkpoint that only the run's idle look would clear.
  await context.deliver(result, async () => {
    await steps?.forget(task);
  });
}

/** How long a segmented run may fold no new segment before it ends RUN_EXPIRED, by default. */
export const DEFAULT_RUN_IDLE_MS = 30 * 60_000;

async function lookLater(task: TaskV1, step: Extract<SegmentedStep, { phase: 'expire' }>, queue: WorkQueue, idleMs: number): Promise<void> {
  await queue.enqueue(encodeTask({ ...task, segmented: step }), { dedupeId: segmentedDedupeId(task.request.id, step), delayMs: idleMs });
}

/**
 * A run's idle look: a run that moved on since the last look is looked at again an idle
 * time later; one that did not (its device neither ended nor abandoned it) ends with a
 * failed RUN_EXPIRED result, and is released once that is recorded. Undefined: nothing to
 * record (moved on, or nothing of the run is held any more).
 */
async function expiry(task: TaskV1, step: Extract<SegmentedStep, { phase: 'expire' }>, steps: SegmentedSteps, queue: WorkQueue, idleMs: number): Promise<ResultV1 | undefined> {
  const progress = await steps.progress(task, step.next);
  if (progress === undefined) return undefined;
  if (progress.moved) {
    await lookLater(task, { phase: 'expire', next: progress.next, check: step.check + 1 }, queue, idleMs);
    return undefined;
  }
  const { request, algorithm } = task;
  const message = `no segment of the run was folded for ${Math.round(idleMs / 1000)} s after ${progress.next} segments, and its device neither ended nor abandoned it`;
  return { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status: 'failed', algorithm, error: { code: 'RUN_EXPIRED', message }, timings: { ...request.timings, computed: epochNow() } };
}
