import { ArteriaError, MAX_SEGMENTED_HEADER_BYTES, MAX_SEGMENT_BYTES, RunAbandonV1, RunEndV1, RunOpenV1, SegmentV1, requestOfRunOpen, segmentedRunId, type DeviceAddress, type RequestV1 } from '@arteria/protocol';
import { assertAcceptedSize, assertInputInScope, type LedgerEntry, type RequestLedger, type SegmentedStep } from '@arteria/ports';
import { pinAlgorithm, type AdmissionRules, type AdmittedAlgorithm } from './admission.js';

/** A segmented-run message a device sent on its requests topic. */
export type SegmentedMessage =
  | { kind: 'run-open'; message: RunOpenV1 }
  | { kind: 'segment'; message: SegmentV1 }
  | { kind: 'run-end'; message: RunEndV1 }
  | { kind: 'run-abandon'; message: RunAbandonV1 };

/** The segmented-run message a payload holds, if it holds one (its `kind` says which schema applies). */
export function asSegmentedMessage(json: unknown): SegmentedMessage | undefined {
  if (typeof json !== 'object' || json === null || !('kind' in json)) return undefined;
  switch (json.kind) {
    case 'run-open':
      return { kind: 'run-open', message: parse(RunOpenV1, json) };
    case 'segment':
      return { kind: 'segment', message: parse(SegmentV1, json) };
    case 'run-end':
      return { kind: 'run-end', message: parse(RunEndV1, json) };
    case 'run-abandon':
      return { kind: 'run-abandon', message: parse(RunAbandonV1, json) };
    default:
      return undefined;
  }
}

/**
 * The segmented-run message in a payload that failed as a request (INVALID_REQUEST), if
 * its `kind` names one; a malformed one throws its own INVALID_REQUEST, naming the field.
 */
export function segmentedMessageOf(err: unknown, payload: Buffer): SegmentedMessage | undefined {
  if (!(err instanceof ArteriaError) || err.code !== 'INVALID_REQUEST') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined; // decodePayload already found it to be JSON; nothing else can fail here
  }
  return asSegmentedMessage(json);
}

function parse<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, json: unknown): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
  throw new ArteriaError('INVALID_REQUEST', `${where}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
}

/**
 * A run-open is admitted as a request whose one input is the run's header: the same
 * identity, storage-prefix, algorithm and entitlement checks, and an id that must be
 * segmentedRunId() of what it names.
 */
export function admitRunOpen(rules: AdmissionRules, from: DeviceAddress, open: RunOpenV1): { request: RequestV1; algorithm: AdmittedAlgorithm } {
  assertSender(from, open);
  assertInBucket(rules.bucket, open.header.uri, open);
  assertInputInScope(open.header, open);
  // Read whole by a worker, and kept for the run's steps.
  assertAcceptedSize(open.header, MAX_SEGMENTED_HEADER_BYTES);
  const expected = segmentedRunId({ tenant: open.tenant, device: open.device, instanceUid: open.instanceUid, algorithm: open.algorithm, headerUri: open.header.uri, headerSha256: open.header.sha256 });
  if (open.id !== expected) throw new ArteriaError('INVALID_REQUEST', 'id: does not match segmentedRunId(tenant, device, instanceUid, algorithm, header uri, header sha256)');
  const request = requestOfRunOpen(open);
  return { request, algorithm: pinAlgorithm(rules, request) };
}

/**
 * A segment or a run's end: from the device that opened the run, naming an object under
 * its own prefix, for a run the ledger holds for that device and has not answered. The
 * step goes on the queue with the run's request and the algorithm version pinned again
 * (the worker runs the version the run was opened with, kept in its checkpoint).
 */
export async function admitRunStep(
  rules: AdmissionRules,
  ledger: RequestLedger,
  from: DeviceAddress,
  step: { kind: 'segment'; message: SegmentV1 } | { kind: 'run-end'; message: RunEndV1 },
): Promise<{ entry: LedgerEntry & { state: 'accepted' }; request: RequestV1; algorithm: AdmittedAlgorithm; step: SegmentedStep } | { completed: LedgerEntry }> {
  const { message } = step;
  assertSender(from, message);
  if (step.kind === 'segment') {
    assertInBucket(rules.bucket, step.message.object.uri, message);
    assertInputInScope(step.message.object, message);
    // A worker reads a segment whole: this bounds its memory, whatever the run's size.
    if (step.message.object.size > MAX_SEGMENT_BYTES) throw new ArteriaError('INPUT_TOO_LARGE', `segment ${step.message.index} is ${step.message.object.size} bytes; a segment may have at most ${MAX_SEGMENT_BYTES}`);
  }
  const entry = await ledger.get(message.requestId);
  if (entry === undefined || entry.tenant !== message.tenant || entry.device !== message.device || entry.request === undefined) {
    throw new ArteriaError('RUN_NOT_OPEN', `${message.requestId} is not a segmented run opened by ${message.tenant}/${message.device}; send its run-open first`);
  }
  if (entry.state === 'completed') {
    if (entry.result.error?.code === 'RUN_ABANDONED') throw new ArteriaError('RUN_ABANDONED', `run ${message.requestId} was abandoned by its device; its ${step.kind === 'segment' ? `segment ${step.message.index}` : 'end'} came after that`);
    return { completed: entry };
  }
  const request = entry.request;
  if (!isSegmentedRequest(request)) throw new ArteriaError('RUN_NOT_OPEN', `${message.requestId} is a whole-file request, not a segmented run`);
  const algorithm = pinAlgorithm(rules, request);
  const acquired = message.acquired === undefined ? {} : { acquired: message.acquired };
  const segmented: SegmentedStep =
    step.kind === 'segment'
      ? { phase: 'segment', index: step.message.index, firstFrame: step.message.firstFrame, frameCount: step.message.frameCount, object: step.message.object, ...acquired }
      : { phase: 'end', segments: step.message.segments, frames: step.message.frames, digest: step.message.digest, ...acquired };
  return { entry, request, algorithm, step: segmented };
}

/** Whether a recorded request is a segmented run's (its id is segmentedRunId() of its header). */
export function isSegmentedRequest(request: RequestV1): boolean {
  const header = request.inputs[0];
  return (
    header !== undefined &&
    request.id === segmentedRunId({ tenant: request.tenant, device: request.device, instanceUid: request.instanceUid, algorithm: request.algorithm, headerUri: header.uri, headerSha256: header.sha256 })
  );
}

function assertSender(from: DeviceAddress, message: DeviceAddress): void {
  if (message.tenant !== from.tenant || message.device !== from.device) {
    throw new ArteriaError('NOT_AUTHORIZED', `message names ${message.tenant}/${message.device} but was published by ${from.tenant}/${from.device}`);
  }
}

function assertInBucket(bucket: string, uri: string, owner: DeviceAddress): void {
  const prefix = `s3://${bucket}/${owner.tenant}/${owner.device}/`;
  if (!uri.startsWith(prefix)) throw new ArteriaError('NOT_AUTHORIZED', `object ${uri} is outside the device's own storage prefix ${prefix}`);
}
