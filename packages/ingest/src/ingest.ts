import {
  ArteriaError,
  ProbeV1,
  SegmentEncoding,
  GrantRequestV1,
  type GrantAnswerV1,
  REQUEST_ID_PATTERN,
  UNREADABLE_REQUEST_ID,
  RequestV1,
  decodePayload,
  epochNow,
  splitAlgorithmSpec,
  toArteriaError,
  type AlgorithmRef,
  type DeviceAddress,
  type ErrorCode,
  type ParsedTopic,
  type ProbeAnswerV1,
  type ResultV1,
  type RunAbandonV1,
  type TraceContext,
} from '@arteria/protocol';
import { ATTR, SpanKind, SpanStatusCode, contextOf, noTracing, traceContextOf, traceIdOf, type Span, type Tracer, quietLogger, type Logger, logRequestEvent, type PlatformMetrics } from '@arteria/telemetry';
import { type DeviceRevocations, type IngestHandler, type IngestOutcome, type LedgerEntry, type ReceivedCopy, type RequestLedger, type UploadGrantSigner, type WorkQueue, type ResultPublisher, type SegmentedStep, encodeTask, segmentedDedupeId } from '@arteria/ports';
import { admit, type AdmittedAlgorithm, type AlgorithmResolver } from './admission.js';
import { admitRunOpen, admitRunStep, segmentedMessageOf, type SegmentedMessage } from './segmented.js';
import { abandonRun, answerAgain, queueRelease } from './abandon.js';
import type { EntitlementPolicy } from './entitlements.js';
import type { AdmissionRateLimiter } from './rate-limit.js';
import type { OpenRunLimit } from './open-runs.js';
import type { RefusalLog } from './refusal-log.js';

export type { AlgorithmResolver } from './admission.js';

export interface IngestDeps {
  /** The cpu pool's queue: every task goes here unless `gpuQueue` takes it. */
  queue: WorkQueue;
  /**
   * The gpu pool's queue: tasks of algorithms whose manifest sets `resources.gpu` go here
   * (GPU workers lease from it). None: every task goes to `queue`.
   */
  gpuQueue?: WorkQueue;
  ledger: RequestLedger;
  algorithms: AlgorithmResolver;
  results: ResultPublisher;
  /** Bucket the devices upload into; inputs elsewhere are refused. */
  bucket: string;
  metrics?: PlatformMetrics;
  /** Which algorithm versions each tenant and device may run; none: every one. */
  entitlements?: EntitlementPolicy;
  /** Where refusals are kept for the operator; none: only counted in metrics. */
  refusals?: RefusalLog;
  /** Per-device limit on new requests (RATE_LIMITED); none: unlimited. */
  rateLimit?: AdmissionRateLimiter;
  /**
   * Tenants whose inputs may run without declaring de-identification: their tasks say so
   * and workers run them. Every other tenant's such input is refused (DEIDENTIFICATION_MISSING).
   */
  identifiedInputTenants?: ReadonlySet<string>;
  /** Per-device cap on open segmented runs (a run-open beyond it is refused TOO_MANY_OPEN_RUNS); none: no cap. */
  openRuns?: OpenRunLimit;
  /** Per-device limit on upload grant requests (answered RATE_LIMITED); none: unlimited. */
  grantRateLimit?: AdmissionRateLimiter;
  /**
   * Per-device limit on answers to what was not admitted: unrecorded refusals (junk,
   * unreadable or refused messages, each of which costs a log line and a publish) and probe
   * answers. Beyond it the first message of a spell is answered RATE_LIMITED and the rest go
   * unanswered and unlogged, only counted, until the bucket refills; none: every one answered.
   */
  replyLimit?: AdmissionRateLimiter;
  /**
   * Revoked devices: whatever they publish is refused (DEVICE_REVOKED) before it is read,
   * for a device revoked while its connection lasts, or on a broker that does not check.
   */
  revocations?: DeviceRevocations;
  /**
   * A copy of a completed request is answered from the ledger only when it reached the
   * platform at least this long after the result was published (or, where the ledger does
   * not note the publish, recorded; default 10 s). Sooner, the
   * recorded result is still on its way: the recording worker publishes it (after a
   * queue outage, possibly seconds later), and answering too would deliver it twice. A
   * device that really missed it gets it on its next resend.
   */
  answerResendAfterMs?: number;
  now?: () => number;
  /** The process's logger: one line per admitted and per refused request. */
  logger?: Logger;
  /** Where admission spans go (`arteria.ingest.admit`); default: the no-op tracer (trace contexts still pass through). */
  tracer?: Tracer;
  /** Signs devices' upload grants; none: grant requests are answered GRANT_UNAVAILABLE. */
  grants?: UploadGrantSigner;
}

/**
 * Admission of device requests: validate, authorize, resolve the algorithm, deduplicate,
 * enqueue durably. A request that cannot be admitted is answered with a `rejected`
 * result on the sender's results topic. Retryable failures (queue down) throw, so the
 * transport withholds the device's acknowledgement and the device resends.
 */
export class Ingest implements IngestHandler {
  readonly #deps: IngestDeps;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #tracer: Tracer;

  constructor(deps: IngestDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? epochNow;
    this.#log = deps.logger ?? quietLogger();
    this.#tracer = deps.tracer ?? noTracing().tracer;
  }

  async handle(topic: ParsedTopic, payload: Buffer, copy: ReceivedCopy = {}): Promise<IngestOutcome> {
    let request: RequestV1 | undefined;
    let span: Span | undefined;
    let pinned: { admitted: AdmittedAlgorithm; segmented: SegmentedStep } | undefined;
    try {
      const revoked = this.#deps.revocations?.revoked(topic);
      if (revoked !== undefined) throw new ArteriaError('DEVICE_REVOKED', `device ${topic.tenant}/${topic.device} was revoked at ${new Date(revoked.revokedAt).toISOString()}: its requests are refused`);
      try {
        request = decodePayload(RequestV1, payload);
      } catch (err) {
        // Not a request: perhaps a dry-run admission probe or an upload grant request
        // (checked second, so requests pay nothing).
        const probe = asOther(ProbeV1, err, payload);
        if (probe !== undefined) return await this.#probe(topic, probe);
        const grant = asOther(GrantRequestV1, err, payload);
        if (grant !== undefined) return await this.#grant(topic, grant);
        const run = segmentedMessageOf(err, payload);
        if (run === undefined) throw err;
        if (run.kind === 'run-abandon') return await this.#abandon(topic, run.message, copy);
        if (run.kind !== 'run-open') return await this.#runStep(topic, run, copy);
        // A segmented run opens as a request whose one input is the run's header.
        const opened = admitRunOpen(this.#rules(), topic, run.message);
        request = opened.request;
        pinned = { admitted: opened.algorithm, segmented: { phase: 'open' } };
      }
      span = this.#admitSpan(request, copy);
      const admitted = pinned?.admitted ?? admit(this.#rules(), topic, request);
      const algorithm = admitted.ref;
      span.setAttribute(ATTR.algorithm, `${algorithm.name}@${algorithm.version}`);
      const outcome = await this.#admit(request, algorithm, this.#queueFor(admitted), copy, traceContextOf(span), pinned?.segmented);
      span.setAttribute(ATTR.outcome, outcome.status);
      return outcome;
    } catch (err) {
      const error = toArteriaError(err);
      span?.setAttributes({ [ATTR.outcome]: error.retryable ? 'retry' : 'rejected', [ATTR.errorCode]: error.code });
      span?.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
      if (error.retryable) throw error;
      const id = request?.id ?? salvageId(payload);
      await this.reject(topic, id, error, request, span === undefined ? undefined : traceContextOf(span));
      return { status: 'rejected', requestId: id, code: error.code };
    } finally {
      span?.end();
    }
  }

  /** The queue of the pool that runs a version (GPU versions go to the GPU pool's queue when there is one). */
  #queueFor(admitted: AdmittedAlgorithm): WorkQueue {
    return admitted.gpu && this.#deps.gpuQueue !== undefined ? this.#deps.gpuQueue : this.#deps.queue;
  }

  #rules(): { algorithms: AlgorithmResolver; bucket: string; entitlements: EntitlementPolicy | undefined; now: () => number } {
    const { algorithms, bucket, entitlements } = this.#deps;
    return { algorithms, bucket, entitlements, now: this.#now };
  }

  /**
   * A segment or the end of a segmented run: queued as a step of the run for the worker
   * (deduplicated per index). A step of a run already answered is dropped, except that a
   * resent end is answered from the ledger as a resent request is (the device resends the
   * end until the result comes, so a result it missed comes again); a refused step is
   * answered like a refused request, for the run's id.
   */
  async #runStep(from: DeviceAddress, run: Extract<SegmentedMessage, { kind: 'segment' | 'run-end' }>, copy: ReceivedCopy): Promise<IngestOutcome> {
    const requestId = run.message.requestId;
    try {
      const admitted = await admitRunStep(this.#rules(), this.#deps.ledger, from, run);
      if ('completed' in admitted) {
        const { completed } = admitted;
        const answered = run.kind === 'run-end' && completed.state === 'completed' && (await answerAgain({ results: this.#deps.results, answerResendAfterMs: this.#deps.answerResendAfterMs ?? 10_000, now: this.#now }, completed, copy.receivedAt));
        return { status: 'duplicate', requestId, completed: true, answered };
      }
      const { request, algorithm, step } = admitted;
      const queue = this.#queueFor(algorithm);
      const identified = this.#deps.identifiedInputTenants?.has(request.tenant) === true ? { identifiedInputs: 'allow' as const } : {};
      const trace = request.trace === undefined ? {} : { trace: request.trace };
      const { enqueued } = await queue.enqueue(encodeTask({ v: 1, request, algorithm: algorithm.ref, segmented: step, ...identified, ...trace }), { dedupeId: segmentedDedupeId(requestId, step) });
      this.#log.debug({ event: run.kind, requestId, tenant: from.tenant, device: from.device, enqueued }, 'segmented run step');
      return enqueued ? { status: 'accepted', requestId } : { status: 'duplicate', requestId, completed: false };
    } catch (err) {
      const error = toArteriaError(err);
      if (error.retryable) throw error;
      await this.#refuseStep(from, requestId, error);
      return { status: 'rejected', requestId, code: error.code };
    }
  }

  /** A device gives up a segmented run it opened (abandon.ts); a refusal is answered unrecorded and changes nothing. */
  async #abandon(from: DeviceAddress, message: RunAbandonV1, copy: ReceivedCopy): Promise<IngestOutcome> {
    const { ledger, results, identifiedInputTenants, metrics } = this.#deps;
    try {
      const context = { rules: this.#rules(), ledger, results, queueFor: (a: AdmittedAlgorithm) => this.#queueFor(a), identifiedInputTenants, answerResendAfterMs: this.#deps.answerResendAfterMs ?? 10_000, now: this.#now, log: this.#log, metrics };
      return await abandonRun(context, from, message, copy.receivedAt);
    } catch (err) {
      const error = toArteriaError(err);
      if (error.retryable) throw error;
      await this.reject(from, message.requestId, error);
      return { status: 'rejected', requestId: message.requestId, code: error.code };
    }
  }

  /**
   * A refused step of a run this device opened ends the run: the refusal is recorded as
   * its result and, when it is the result that stands, published, noted as published, and
   * the run's release step queued (as an abandoned run's is). When another result was
   * recorded first, its recorder publishes it. Any other refusal is answered unrecorded.
   */
  async #refuseStep(from: DeviceAddress, requestId: string, error: ArteriaError): Promise<void> {
    const entry = error.code === 'RUN_NOT_OPEN' ? undefined : await this.#deps.ledger.get(requestId);
    if (entry?.state !== 'accepted' || entry.tenant !== from.tenant || entry.device !== from.device) {
      await this.reject(from, requestId, error);
      return;
    }
    this.#deps.metrics?.requests.inc({ outcome: 'rejected', code: error.code });
    logRequestEvent(this.#log, 'refused', { requestId, tenant: from.tenant, device: from.device, code: error.code, reason: error.message });
    const timings = { ...(entry.request?.timings ?? {}), resultPublished: this.#now() };
    const standing = await this.#deps.ledger.recordResult({ v: 1, requestId, tenant: from.tenant, device: from.device, status: 'rejected', error: { code: error.code, message: error.message.slice(0, 2000) }, timings });
    // Another result recorded first (a worker reached the run's end, or its abandonment): its recorder publishes it.
    if (!standing.recorded) return;
    await this.#deps.results.publish(standing.result);
    // Noted, or the run's next leased step finds it unpublished and sends it again.
    await this.#deps.ledger.markPublished(requestId, this.#now());
    // The run ends here: its checkpoint, parked steps and live state go, as an abandoned run's do.
    const { identifiedInputTenants } = this.#deps;
    await queueRelease({ rules: this.#rules(), queueFor: (a: AdmittedAlgorithm) => this.#queueFor(a), identifiedInputTenants, log: this.#log }, entry);
  }

  /** Admission's span: a child of the trace the request came with (user properties first, then its `trace`). */
  #admitSpan(request: RequestV1, copy: ReceivedCopy): Span {
    return this.#tracer.startSpan(
      'arteria.ingest.admit',
      {
        kind: SpanKind.CONSUMER,
        ...(copy.receivedAt === undefined ? {} : { startTime: copy.receivedAt }),
        attributes: { [ATTR.requestId]: request.id, [ATTR.tenant]: request.tenant, [ATTR.device]: request.device, [ATTR.algorithm]: request.algorithm },
      },
      contextOf(copy.trace ?? request.trace),
    );
  }

  /**
   * Answers a device with a typed rejection on its own results topic; `trace` goes back with
   * it. Within the device's reply budget (`replyLimit`): beyond it, RATE_LIMITED once, then
   * nothing until it refills.
   */
  async reject(to: DeviceAddress, id: string, refusal: ArteriaError, request?: RequestV1, trace?: TraceContext): Promise<void> {
    const budget = this.#replyBudget(to, refusal.code);
    if (budget === 'refused') return;
    const error = budget === 'taken' ? refusal : budget;
    this.#deps.metrics?.requests.inc({ outcome: 'rejected', code: error.code });
    this.#deps.refusals?.record({ at: this.#now(), tenant: to.tenant, device: to.device, requestId: id, code: error.code, message: error.message });
    const traceId = traceIdOf(trace ?? request?.trace);
    logRequestEvent(this.#log, 'refused', { requestId: id, tenant: to.tenant, device: to.device, ...(request ? { algorithm: request.algorithm, timings: request.timings } : {}), code: error.code, reason: error.message, traceId });
    const result: ResultV1 = {
      v: 1,
      requestId: id,
      tenant: to.tenant,
      device: to.device,
      status: 'rejected',
      error: { code: error.code, message: error.message.slice(0, 2000) },
      timings: { ...(request?.timings ?? {}), resultPublished: this.#now() },
      ...(trace === undefined ? {} : { trace }),
    };
    await this.#deps.results.publish(result);
  }

  /** Answers an upload grant request: presigned URLs for one key under the sender's own prefix, or a typed refusal. */
  async #grant(from: DeviceAddress, request: GrantRequestV1): Promise<IngestOutcome> {
    const issuer = this.#deps.grants;
    const refuse = (code: ErrorCode, message: string): GrantAnswerV1 => ({ v: 1, kind: 'grant-answer', grantId: request.id, tenant: from.tenant, device: from.device, key: request.key, expiresAt: 0, urls: {}, parts: [], error: { code, message } });
    let answer: GrantAnswerV1;
    try {
      // Every grant request takes a token, resends too: signing costs the platform, so a
      // device cannot flood ingest with them.
      this.#deps.grantRateLimit?.take(from);
      answer = issuer ? await issuer.issue(from, request) : refuse('GRANT_UNAVAILABLE', 'this platform signs no upload grants (no object-store credentials for them)');
    } catch (err) {
      const error = toArteriaError(err);
      if (error.code !== 'RATE_LIMITED') throw error;
      answer = refuse(error.code, error.message);
    }
    if (answer.error !== undefined) {
      this.#log.warn({ tenant: from.tenant, device: from.device, grantId: request.id, key: request.key.slice(0, 200), code: answer.error.code, reason: answer.error.message }, 'upload grant refused');
    }
    if (this.#deps.results.publishGrant === undefined) throw new ArteriaError('INTERNAL', 'this result publisher cannot answer upload grant requests');
    await this.#deps.results.publishGrant(answer);
    return { status: 'granted', grantId: request.id, ...(answer.error ? { code: answer.error.code } : {}) };
  }

  /** Answers a probe with what admission would do for each algorithm, for this device; nothing is recorded or queued. */
  async #probe(from: DeviceAddress, probe: ProbeV1): Promise<IngestOutcome> {
    const budget = this.#replyBudget(from, 'PROBE');
    if (budget === 'refused') return { status: 'probed', probeId: probe.id, refused: probe.algorithms.length };
    if (budget !== 'taken') {
      const limited = { status: 'refused' as const, error: { code: budget.code, message: budget.message.slice(0, 2000) } };
      await this.#publishProbeAnswer({ v: 1, kind: 'probe-answer', probeId: probe.id, tenant: from.tenant, device: from.device, algorithms: probe.algorithms.map((spec) => ({ spec, ...limited })), at: this.#now() });
      return { status: 'probed', probeId: probe.id, refused: probe.algorithms.length };
    }
    const algorithms = probe.algorithms.map((spec): ProbeAnswerV1['algorithms'][number] => {
      try {
        const enabled = this.#deps.entitlements?.rangesFor(from.tenant, from.device, splitAlgorithmSpec(spec).name);
        const signedOnly = this.#deps.entitlements?.requiresSignedAlgorithms(from.tenant) ?? false;
        return { spec, status: 'accepted', version: this.#deps.algorithms.resolve(spec, enabled, { signedOnly }).ref.version };
      } catch (err) {
        const error = toArteriaError(err);
        return { spec, status: 'refused', error: { code: error.code, message: error.message.slice(0, 2000) } };
      }
    });
    // Every worker of this platform expands every encoding the protocol names (worker/segmented/segment-encoding.ts).
    const capabilities = probe.capabilities === true ? { capabilities: { segmentEncodings: [...SegmentEncoding.options] } } : {};
    await this.#publishProbeAnswer({ v: 1, kind: 'probe-answer', probeId: probe.id, tenant: from.tenant, device: from.device, algorithms, ...capabilities, at: this.#now() });
    return { status: 'probed', probeId: probe.id, refused: algorithms.filter((a) => a.status === 'refused').length };
  }

  async #publishProbeAnswer(answer: ProbeAnswerV1): Promise<void> {
    if (this.#deps.results.publishProbeAnswer === undefined) throw new ArteriaError('INTERNAL', 'this result publisher cannot answer admission probes');
    await this.#deps.results.publishProbeAnswer(answer);
  }

  /**
   * Takes a token of `to`'s reply budget for an answer to something not admitted (`what`
   * failed with that code): 'taken' to answer it, the RATE_LIMITED error to answer instead
   * (the first over the budget in a spell), or 'refused' to leave it unanswered and unlogged.
   */
  #replyBudget(to: DeviceAddress, what: string): 'taken' | 'refused' | ArteriaError {
    const limit = this.#deps.replyLimit;
    if (limit === undefined) return 'taken';
    const taken = limit.tryTake(to);
    if (taken === 'taken') return 'taken';
    if (taken === 'refused') {
      this.#deps.metrics?.requests.inc({ outcome: 'unanswered', code: what });
      return 'refused';
    }
    const limited = limit.limited(to);
    this.#log.warn({ tenant: to.tenant, device: to.device, code: what, reason: limited.message }, 'device over its reply budget: what it sends that is refused, and its probes, go unanswered until the budget refills');
    return new ArteriaError('RATE_LIMITED', `${limited.message}; messages refused or probes beyond this go unanswered until then (this one: ${what})`);
  }

  /** Whether a task is still to be settled in any pool's queue (a version promoted meanwhile may have moved pools). */
  async #pending(dedupeId: string): Promise<boolean> {
    const { queue, gpuQueue } = this.#deps;
    return (await queue.pending(dedupeId)) || (gpuQueue !== undefined && (await gpuQueue.pending(dedupeId)));
  }

  async #admit(request: RequestV1, algorithm: AlgorithmRef, queue: WorkQueue, copy: ReceivedCopy, trace: TraceContext | undefined, segmented?: SegmentedStep): Promise<IngestOutcome> {
    const { ledger, results, metrics } = this.#deps;
    const existing = await this.#recorded(request, trace);
    if (existing === 'tampered') return { status: 'rejected', requestId: request.id, code: 'LEDGER_TAMPERED' };
    if (existing?.state === 'completed') {
      metrics?.requests.inc({ outcome: 'duplicate', code: '' });
      // A copy that waited here (queue down) or crossed the result on its way: not a question.
      // Measured from the publish when the ledger notes it: an outage can hold a recorded
      // result back for longer than the window, and a copy sent meanwhile is not a question.
      const answeredAt = existing.publishedAt ?? existing.completedAt;
      if (copy.receivedAt !== undefined && copy.receivedAt < answeredAt + (this.#deps.answerResendAfterMs ?? 10_000)) {
        return { status: 'duplicate', requestId: request.id, completed: true, answered: false };
      }
      // Recorded, but its task is not settled: the recording worker (or the task's next
      // delivery) still publishes it, however long a queue outage held it up. Answering
      // too would deliver it twice; the device asks again if it really missed it.
      if (await this.#pending(request.id)) return { status: 'duplicate', requestId: request.id, completed: true, answered: false };
      // Likewise while a replay of its dead-lettered task is pending: that task's worker publishes it.
      if (existing.replayedAs !== undefined && (await this.#pending(existing.replayedAs))) return { status: 'duplicate', requestId: request.id, completed: true, answered: false };
      // Completed before: the device resent because it missed the result. Send it again.
      await results.publish(existing.result);
      return { status: 'duplicate', requestId: request.id, completed: true, answered: true };
    }
    // Only a request the ledger has never seen takes a token: resends stay free.
    if (existing === undefined) {
      this.#deps.rateLimit?.take(request);
      // Likewise only a new run-open takes a slot of its device's open runs.
      if (segmented?.phase === 'open') await this.#deps.openRuns?.take(request);
    }
    const timings = { ...request.timings, enqueued: this.#now() };
    const identified = this.#deps.identifiedInputTenants?.has(request.tenant) === true ? { identifiedInputs: 'allow' as const } : {};
    const task = encodeTask({ v: 1, request: { ...request, timings }, algorithm, ...identified, ...(trace === undefined ? {} : { trace }), ...(segmented === undefined ? {} : { segmented }) });
    // Record, then enqueue: a crash in between leaves a ledger entry whose task the
    // resend (not yet acknowledged) enqueues; the queue's dedupe makes a repeat harmless.
    await ledger.recordAccepted({ requestId: request.id, tenant: request.tenant, device: request.device, algorithm: request.algorithm, acceptedAt: timings.enqueued, request });
    const { enqueued } = await queue.enqueue(task, { dedupeId: request.id });
    metrics?.requests.inc({ outcome: enqueued ? 'accepted' : 'duplicate', code: '' });
    const who = { requestId: request.id, tenant: request.tenant, device: request.device, algorithm, traceId: traceIdOf(trace) };
    if (enqueued) logRequestEvent(this.#log, 'admitted', { ...who, timings });
    else this.#log.debug({ event: 'duplicate', ...who, algorithm: `${algorithm.name}@${algorithm.version}` }, 'request duplicate: already queued');
    return enqueued ? { status: 'accepted', requestId: request.id } : { status: 'duplicate', requestId: request.id, completed: false };
  }

  /**
   * The ledger's entry for a request. One that fails its hash-chain check is answered
   * `failed` (LEDGER_TAMPERED) and neither replayed nor run again: an operator must look.
   */
  async #recorded(request: RequestV1, trace: TraceContext | undefined): Promise<LedgerEntry | undefined | 'tampered'> {
    try {
      return await this.#deps.ledger.get(request.id);
    } catch (err) {
      const error = toArteriaError(err);
      if (error.code !== 'LEDGER_TAMPERED') throw error;
      this.#deps.metrics?.requests.inc({ outcome: 'rejected', code: error.code });
      this.#deps.refusals?.record({ at: this.#now(), tenant: request.tenant, device: request.device, requestId: request.id, code: error.code, message: error.message });
      logRequestEvent(this.#log, 'refused', { requestId: request.id, tenant: request.tenant, device: request.device, algorithm: request.algorithm, code: error.code, reason: error.message, traceId: traceIdOf(trace) });
      await this.#deps.results.publish({
        v: 1,
        requestId: request.id,
        tenant: request.tenant,
        device: request.device,
        status: 'failed',
        error: { code: error.code, message: 'the platform cannot vouch for its record of this request; an operator has been told' },
        timings: { ...request.timings, resultPublished: this.#now() },
        ...(trace === undefined ? {} : { trace }),
      });
      return 'tampered';
    }
  }
}

/**
 * The other message a payload that is not a request holds (a probe, an upload grant
 * request), if it is one of `schema`.
 */
function asOther<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } }, err: unknown, payload: Buffer): T | undefined {
  if (!(err instanceof ArteriaError) || err.code !== 'INVALID_REQUEST') return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(payload.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // decodePayload already found it to be JSON; nothing else can fail here
  }
}

/** Best effort: the id of a request that failed validation, so the device can match the rejection. */
function salvageId(payload: Buffer): string {
  try {
    const parsed: unknown = JSON.parse(payload.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'id' in parsed && typeof parsed.id === 'string' && REQUEST_ID_PATTERN.test(parsed.id)) {
      return parsed.id;
    }
    // A segmented run's other messages name the run as `requestId`.
    if (typeof parsed === 'object' && parsed !== null && 'requestId' in parsed && typeof parsed.requestId === 'string' && REQUEST_ID_PATTERN.test(parsed.requestId)) {
      return parsed.requestId;
    }
  } catch {
    // Not JSON: the rejection goes out with the placeholder id.
  }
  return UNREADABLE_REQUEST_ID;
}
