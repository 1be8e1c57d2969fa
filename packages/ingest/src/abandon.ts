import { ArteriaError, type DeviceAddress, type ResultV1, type RunAbandonV1 } from '@arteria/protocol';
import { logRequestEvent, type Logger, type PlatformMetrics } from '@arteria/telemetry';
import { encodeTask, segmentedDedupeId, type IngestOutcome, type LedgerEntry, type RequestLedger, type ResultPublisher, type WorkQueue } from '@arteria/ports';
import { pinAlgorithm, type AdmissionRules, type AdmittedAlgorithm } from './admission.js';
import { isSegmentedRequest } from './segmented.js';

export interface AbandonContext {
  rules: AdmissionRules;
  ledger: RequestLedger;
  results: ResultPublisher;
  /** The queue of the pool that runs a version. */
  queueFor: (admitted: AdmittedAlgorithm) => WorkQueue;
  identifiedInputTenants: ReadonlySet<string> | undefined;
  /** A copy of an abandon reaching the platform sooner than this after the run's answer is not answered again (see IngestDeps.answerResendAfterMs). */
  answerResendAfterMs: number;
  now: () => number;
  log: Logger;
  metrics: PlatformMetrics | undefined;
}

/** Whether a recorded result is a run's abandonment. */
export const isAbandoned = (entry: LedgerEntry): boolean => entry.state === 'completed' && entry.result.error?.code === 'RUN_ABANDONED';

/**
 * A device abandons a segmented run it opened and will not end. The first abandon records
 * RUN_ABANDONED as the run's result (the first recorded result stands: a worker that
 * reaches the run's end meanwhile publishes nothing), publishes it, and queues the run's
 * `abandon` step, whose worker releases the run's checkpoint, parked steps and live state;
 * the run's other queued steps find the result recorded and do the same. A copy of the
 * abandon, or an abandon of a run that already has its result, changes nothing and is
 * answered from the ledger as a resent request is. Refusals are typed and unrecorded: a run
 * of another device or tenant (NOT_AUTHORIZED), a run the ledger does not hold as a
 * segmented run (RUN_NOT_OPEN).
 */
export async function abandonRun(ctx: AbandonContext, from: DeviceAddress, message: RunAbandonV1, receivedAt: number | undefined): Promise<IngestOutcome> {
  const { requestId } = message;
  if (message.tenant !== from.tenant || message.device !== from.device) {
    throw new ArteriaError('NOT_AUTHORIZED', `message names ${message.tenant}/${message.device} but was published by ${from.tenant}/${from.device}`);
  }
  const entry = await ctx.ledger.get(requestId);
  if (entry?.request === undefined) throw new ArteriaError('RUN_NOT_OPEN', `${requestId} is not a segmented run opened by ${from.tenant}/${from.device}`);
  if (entry.tenant !== from.tenant || entry.device !== from.device) {
    throw new ArteriaError('NOT_AUTHORIZED', `run ${requestId} was not opened by ${from.tenant}/${from.device}: a device abandons only its own runs`);
  }
  const request = entry.request;
  if (!isSegmentedRequest(request)) throw new ArteriaError('RUN_NOT_OPEN', `${requestId} is a whole-file request, not a segmented run`);
  if (entry.state === 'completed') {
    // Recorded but perhaps not released (the platform stopped in between): queued again, the queue's dedupe makes it harmless.
    if (isAbandoned(entry)) await queueRelease(ctx, entry);
    return { status: 'duplicate', requestId, completed: true, answered: await answerAgain(ctx, entry, receivedAt) };
  }
  const reason = `${message.reason.code}${message.reason.message === undefined ? '' : `: ${message.reason.message}`}`;
  const result: ResultV1 = {
    v: 1,
    requestId,
    tenant: from.tenant,
    device: from.device,
    status: 'failed',
    error: { code: 'RUN_ABANDONED', message: `the device abandoned the run (${reason})`.slice(0, 2000) },
    timings: { ...request.timings, resultPublished: ctx.now() },
    ...(request.trace === undefined ? {} : { trace: request.trace }),
  };
  // Recording returns the result that stands. Another recorded first (the run's end was
  // folded meanwhile): its worker publishes that one.
  const standing = await ctx.ledger.recordResult(result);
  const abandoned = standing.result.error?.code === 'RUN_ABANDONED';
  if (abandoned && standing.publishedAt === undefined) {
    await ctx.results.publish(standing.result);
    await ctx.ledger.markPublished(requestId, ctx.now());
    ctx.metrics?.requests.inc({ outcome: 'failed', code: 'RUN_ABANDONED' });
    logRequestEvent(ctx.log, 'delivered', { requestId, tenant: from.tenant, device: from.device, algorithm: request.algorithm, status: 'failed', code: 'RUN_ABANDONED', reason, timings: result.timings });
  }
  if (abandoned) await queueRelease(ctx, entry);
  return { status: 'accepted', requestId };
}

/**
 * Queues the run's `abandon` step, which releases a run whose result is recorded (its
 * abandonment, or a refused step that ended it). A version no longer entitled cannot be
 * pinned for it: then the run's steps still queued release it, or else its idle look
 * (queued by its open step), which finds the result recorded.
 */
export async function queueRelease(ctx: Pick<AbandonContext, 'rules' | 'queueFor' | 'identifiedInputTenants' | 'log'>, entry: LedgerEntry): Promise<void> {
  const request = entry.request;
  if (request === undefined) return;
  let admitted: AdmittedAlgorithm;
  try {
    admitted = pinAlgorithm(ctx.rules, request);
  } catch (err) {
    ctx.log.warn({ event: 'abandon', requestId: request.id, reason: (err as Error).message.slice(0, 500) }, 'abandoned run: no version to queue its release with');
    return;
  }
  const identified = ctx.identifiedInputTenants?.has(request.tenant) === true ? { identifiedInputs: 'allow' as const } : {};
  const step = { phase: 'abandon' as const };
  const task = encodeTask({ v: 1, request, algorithm: admitted.ref, segmented: step, ...identified, ...(request.trace === undefined ? {} : { trace: request.trace }) });
  await ctx.queueFor(admitted).enqueue(task, { dedupeId: segmentedDedupeId(request.id, step) });
}

/**
 * A resent abandon is answered with what the ledger holds only when the device may really
 * have missed it: not while the answer is still on its way (published, or else recorded,
 * less than the resend window ago).
 */
export async function answerAgain(ctx: Pick<AbandonContext, 'results' | 'answerResendAfterMs' | 'now'>, entry: LedgerEntry & { state: 'completed' }, receivedAt: number | undefined): Promise<boolean> {
  const answeredAt = entry.publishedAt ?? entry.completedAt;
  if ((receivedAt ?? ctx.now()) < answeredAt + ctx.answerResendAfterMs) return false;
  await ctx.results.publish(entry.result);
  return true;
}
