/**
 * Every failure Arteria reports has a stable code. The registry documents each one;
 * a test checks that docs/protocol.md lists them all.
 */
export const ERROR_CODES = {
  INVALID_JSON: { retryable: false, doc: 'The request payload is not valid UTF-8 JSON.' },
  INVALID_REQUEST: { retryable: false, doc: 'The request does not match the request schema; the message names the first offending field.' },
  PAYLOAD_TOO_LARGE: { retryable: false, doc: 'The MQTT payload exceeds 128 KB. Large data goes to object storage; only its address travels over MQTT.' },
  INVALID_TOPIC: { retryable: false, doc: 'The topic is not an arteria/v1/{tenant}/{device}/... topic, or an id segment holds wildcards, separators or other forbidden characters.' },
  NOT_AUTHORIZED: { retryable: false, doc: 'A device published or subscribed under another device\'s or tenant\'s id. A device speaks only for itself.' },
  UNKNOWN_ALGORITHM: { retryable: false, doc: 'No registered algorithm version matches the requested name@range.' },
  ALGORITHM_NOT_ENABLED: { retryable: false, doc: 'The algorithm exists, but no version matching the request is enabled for this tenant or device (the platform\'s entitlements); the message names the versions that are enabled.' },
  DEADLINE_EXCEEDED: { retryable: false, doc: 'The request\'s deadline passed before a result could be produced.' },
  INPUT_NOT_FOUND: { retryable: false, doc: 'An input object named by the request does not exist in object storage, or the file given to the gateway does not exist.' },
  INPUT_TOO_LARGE: { retryable: false, doc: 'An input object is larger than the algorithm or platform accepts.' },
  CHECKSUM_MISMATCH: { retryable: false, doc: 'An input object\'s size or SHA-256 differs from what the request declared. At the gateway: an object already stored under one of a run\'s keys holds other bytes than the run\'s (objects are written once), or frames of a run sent while it is acquired changed after they were cut into a segment.' },
  INVALID_DICOM: { retryable: false, doc: 'The file is not DICOM Part 10 (no 128-byte preamble and "DICM" prefix) or its header cannot be parsed.' },
  UNSUPPORTED_DICOM: { retryable: false, doc: 'The DICOM object is valid but not what the algorithm takes (for example not a multi-frame image, or missing pixel data).' },
  UNSUPPORTED_TRANSFER_SYNTAX: { retryable: false, doc: 'The run is encoded in a transfer syntax Arteria cannot decode; the message names the syntax UID.' },
  ALGORITHM_TIMEOUT: { retryable: false, doc: 'The algorithm ran longer than its manifest\'s timeout and was stopped.' },
  ALGORITHM_CRASHED: { retryable: false, doc: 'The algorithm\'s isolated thread died (uncaught error, out of memory). Only this request fails; the worker goes on.' },
  ALGORITHM_FAILED: { retryable: false, doc: 'The algorithm rejected the input or threw a reported error.' },
  OUTPUT_INVALID: { retryable: false, doc: 'The algorithm\'s output does not match the output schema in its manifest.' },
  LEASE_LOST: { retryable: false, doc: 'A worker acked, extended or nacked a task whose lease had already expired and passed to another worker; that worker\'s outcome stands.' },
  DEAD_LETTERED: { retryable: false, doc: 'The task was delivered the maximum number of times without completing and was moved to the dead-letter store.' },
  DEAD_LETTER_NOT_FOUND: { retryable: false, doc: 'No dead letter has this task id in the queue (`arteria dlq list` shows the ids); it may have been replayed or removed already.' },
  DEAD_LETTER_UNREADABLE: { retryable: false, doc: 'A dead letter holds a task this platform cannot read (not a task Arteria wrote, or damaged), so it cannot be replayed; `arteria dlq show` prints what is known of it.' },
  REPLAY_NOT_AVAILABLE: { retryable: false, doc: 'This dashboard cannot replay dead letters: it runs without the algorithm registry and entitlements that admission needs (a cluster\'s `arteria dashboard`). Replay with `arteria dlq replay`.' },
  REQUEST_NOT_FOUND: { retryable: false, doc: 'The ledger has no record of this request id (ids are r followed by 31 hex digits): it was never admitted (a refusal is not recorded), or it belongs to another deployment.' },
  STORAGE_UNAVAILABLE: { retryable: true, doc: 'Object storage could not be reached; the operation is retried.' },
  QUEUE_UNAVAILABLE: { retryable: true, doc: 'The work queue could not accept or return work; the operation is retried.' },
  UPLOAD_FAILED: { retryable: true, doc: 'The gateway could not upload a run to object storage; it stays in the outbox and is retried.' },
  RESULT_TIMEOUT: { retryable: true, doc: 'The gateway did not receive a result in time; the request stays in the outbox and is resent (the platform deduplicates).' },
  PORT_IN_USE: { retryable: false, doc: 'A port Arteria wants to listen on is taken by another program; the message names the flag that changes it.' },
  CONFIG_STALE: { retryable: false, doc: 'A pushed fleet config names a version that is not newer than the one in effect (or reuses the active version with different content); versions only go up, so push it again as a new version.' },
  CONFIG_UNCONFIRMED: { retryable: true, doc: 'The gateway applied a pushed fleet config but could not prove it works (the broker connection did not hold, or the platform did not answer the admission probe in time), so it rolled back to the previous one; the retained config is tried again on the next connection.' },
  CONFIG_INVALID: { retryable: false, doc: 'A configuration value is missing, of the wrong type, or unknown.' },
  USAGE: { retryable: false, doc: 'A command line the `arteria` or `arteria-gateway` command cannot read: unknown command or option, missing argument. The command exits with status 2 and names its --help.' },
  GATEWAY_DISK_FULL: { retryable: true, doc: 'The gateway\'s disk (its outbox database or spool folder) has no room for a new run, so the run was refused and nothing of it was stored; runs already accepted are unaffected and still delivered. Free space and send it again.' },
  OUTBOX_FULL: { retryable: true, doc: 'The gateway\'s outbox already holds maxOutboxEntries runs not yet answered; the new run was refused (nothing already accepted is dropped). Retry once results come back, or raise maxOutboxEntries.' },
  GATEWAY_ALREADY_RUNNING: { retryable: false, doc: 'Another gateway process is running on this outbox (it holds the outbox\'s lock file, `{outboxPath}.lock`); the message names its pid when its status file says. Two gateways on one outbox would both send its runs and race on their states, so the second does not start. Stop the other one, or give each gateway its own outboxPath.' },
  DATA_DIR_IN_USE: { retryable: false, doc: 'Another embedded platform (`arteria up`) is running on this data dir (it holds the lock file `platform.lock` in it). Two would share one queue, ledger, audit chain and object folder, so the second does not start. Stop the other one, or give each its own --data-dir.' },
  GATEWAY_NOT_RUNNING: { retryable: true, doc: 'The gateway was not started, or closed before the run\'s result arrived. A run it had accepted stays in the outbox and resumes when the gateway starts again.' },
  ILLEGAL_STATE: { retryable: false, doc: 'A part of Arteria was asked to do something its state does not allow: started twice, used before `start()` or after `close()`, or an outbox entry moved along a transition its state machine lacks (such as a finished run uploaded again). The message names the part, its state and the operation. A programming error, reported rather than ignored; nothing was changed.' },
  DEIDENTIFICATION_REFUSED: { retryable: false, doc: 'The gateway refused to let a run leave the site: it could not be de-identified under the site\'s profile (for example burned-in annotation with a refuse policy, or pixels that cannot be masked).' },
  SCALE_TARGET_UNAVAILABLE: { retryable: true, doc: 'The autoscaler could not read or set the worker count at its scale target (Kubernetes API server, KEDA); the current workers keep running and the next control tick tries again.' },
  LEDGER_TAMPERED: { retryable: false, doc: 'The platform\'s ledger record for this request does not match its hash chain (it was changed, removed or reordered outside the platform); the recorded result is not served. `arteria audit verify` names the record.' },
  RATE_LIMITED: { retryable: false, doc: 'The device sent more requests, or more upload grant requests, than its rate allows (a token bucket per device for each); the request was not admitted and is not in the ledger, or the grant was not signed. Send it again later.' },
  CREDENTIAL_EXPIRED: { retryable: false, doc: 'The device token is past its expiry, or is a token without an expiry where those are no longer accepted: the broker refuses the login. Issue the device a new token.' },
  DEVICE_REVOKED: { retryable: false, doc: 'The device is on the revocation list: brokers refuse its logins (token or certificate) and ingest refuses its requests and upload grant requests until an operator reinstates it.' },
  DEIDENTIFICATION_MISSING: { retryable: false, doc: 'The input does not declare de-identification (Patient Identity Removed YES and a De-identification Method), and the tenant does not allow identified inputs.' },
  ARTIFACT_UNSIGNED: { retryable: false, doc: 'The algorithm artifact carries no signature, and the platform or the tenant requires signed algorithms; the version is not registered (platform) or not run for that tenant (admission). Sign it with `arteria algorithm sign`.' },
  ARTIFACT_SIGNATURE_INVALID: { retryable: false, doc: 'The algorithm artifact\'s signature does not verify: it was made by a key the platform does not trust, or the artifact\'s bytes changed after signing (the message says which). The artifact is refused.' },
  ARTIFACT_INVALID: { retryable: false, doc: 'A file given as an algorithm artifact is not one (not an Arteria artifact archive, a damaged archive, an entry that would be written outside its folder, or an artifact store\'s copy that does not hash to the digest it is stored under).' },
  RELEASE_REFUSED: { retryable: false, doc: 'An algorithm release step was refused: the version is already published with other content, it is not in the artifact store, or the stage change is not allowed (dev → validated → released, retired is final).' },
  OBJECT_EXISTS: { retryable: false, doc: 'A device asked for a grant to write an object that is already stored. Objects are written once: a device can never replace an input the platform may already have verified.' },
  GRANT_UNAVAILABLE: { retryable: true, doc: 'The platform did not answer a device\'s upload grant request in time, or cannot sign grants (no object-store credentials); the upload is retried.' },
  BROKER_UNAVAILABLE: { retryable: true, doc: 'An MQTT broker could not be reached, or refused what a platform process asked of it (a subscription); the process keeps running and reconnects. Reported to the process\'s error handler; the message names the broker and what to check (address, credentials, ACL).' },
  TRACING_UNAVAILABLE: { retryable: false, doc: 'Spans could not be exported to the OpenTelemetry collector; those spans are dropped and the work they describe is not affected. Reported to the process\'s error handler; the message names the collector.' },
  CLOSE_FAILED: { retryable: false, doc: 'A part of Arteria closed, but some of what it had opened failed to close; every step still ran. The message lists each failure; the cause holds them all.' },
  RUN_NOT_OPEN: { retryable: false, doc: 'A segment, the end or the abandon of a segmented run names a request id that is not an open segmented run of this device: it was never opened (send its run-open first), belongs to another device, or has already ended with a result.' },
  SEGMENT_MISMATCH: { retryable: false, doc: 'A segmented run contradicts itself: a segment whose frames do not follow the previous segment or whose size is not its frame count times the frame size, or an end whose segment count, frame count or run digest does not match the segments (the first announcement of an index stands). The run ends with this error.' },
  RUN_INCOMPLETE: { retryable: false, doc: 'A run sent while it is acquired stopped arriving before it was complete: its file stopped growing short of its Pixel Data length (or its frame source stopped without ending the run) for the stability time, and no explicit end said the run was over. The gateway ends the run without sending its end and abandons it on the platform (RUN_ABANDONED).' },
  RUN_ABANDONED: { retryable: false, doc: 'The device abandoned a run it was sending while it was acquired (its source stopped short for good, was gone, or the run was withdrawn): the platform released the run and recorded this as its result. A segment or end of the run that comes afterwards is refused with this code.' },
  RUN_EXPIRED: { retryable: false, doc: 'A run sent while it is acquired got no new segment folded for the platform\'s run idle time (`segmentedRunIdleMs`, default 30 min): its device neither ended nor abandoned it. The platform released the run and recorded this as its result; later steps of the run are dropped.' },
  TOO_MANY_OPEN_RUNS: { retryable: false, doc: 'The device already holds the most segmented runs open that a device may (`ingest.maxOpenSegmentedRunsPerDevice`, embedded `maxOpenSegmentedRunsPerDevice`, default 8): the run-open was refused and nothing was recorded. A run frees its slot when it ends, is abandoned or expires. Arteria\'s gateway sends the run whole instead.' },
  NOT_INCREMENTAL: { retryable: false, doc: 'The algorithm version has no incremental contract, so it cannot take a run sent while it is being acquired; send the whole run instead.' },
  INTERNAL: { retryable: true, doc: 'An unexpected platform error; the task is retried and, after the delivery limit, dead-lettered.' },
  MODEL_UNAVAILABLE: { retryable: false, doc: 'The algorithm\'s model cannot be loaded: its file is missing or unreadable, or the inference server does not serve that model.' },
  INFERENCE_UNAVAILABLE: { retryable: true, doc: 'The inference server (KServe v2 / Open Inference Protocol, for example Triton) could not be reached, is not ready, or answered with a server error; the task is retried.' },
  INFERENCE_FAILED: { retryable: false, doc: 'The inference backend refused the inputs (unknown tensor name, wrong type or shape) or the model failed on them.' },
} as const satisfies Record<string, { retryable: boolean; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Codes that mean the request's input cannot be used as given. A result carrying one is
 * `rejected`, wherever it was found (admission or worker): resending the same will not help.
 * Every other non-retryable code on an admitted request gives `failed`.
 */
export const INPUT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INPUT_NOT_FOUND',
  'INPUT_TOO_LARGE',
  'CHECKSUM_MISMATCH',
  'INVALID_DICOM',
  'UNSUPPORTED_DICOM',
  'UNSUPPORTED_TRANSFER_SYNTAX',
  'DEIDENTIFICATION_MISSING',
  'SEGMENT_MISMATCH',
  'NOT_INCREMENTAL',
]);

export const isErrorCode = (value: string): value is ErrorCode => Object.hasOwn(ERROR_CODES, value);

/** The one error type Arteria throws across package boundaries. */
export class ArteriaError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ArteriaError';
    this.code = code;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Normalises anything thrown into an ArteriaError, keeping the original as cause. */
export function toArteriaError(err: unknown, fallback: ErrorCode = 'INTERNAL'): ArteriaError {
  if (err instanceof ArteriaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ArteriaError(fallback, message, { cause: err });
}

/** CLOSE_FAILED for `part`, naming every failure; the cause holds them all. */
export function closeFailed(part: string, failures: readonly unknown[]): ArteriaError {
  const detail = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; ');
  return new ArteriaError('CLOSE_FAILED', `${part} closed with ${failures.length} failure(s): ${detail}`, { cause: new AggregateError(failures, detail) });
}
