import { z } from 'zod';
import { ArteriaError } from './errors.js';
import { REQUEST_ID_PATTERN } from './ids.js';
import { MAX_INPUTS_PER_REQUEST, MAX_PAYLOAD_BYTES } from './limits.js';
import { TraceContext } from './trace-context.js';
import { ErrorDetailSchema, answerTo, errorCodeSchema as errorCode, idSchema as id, questionIdSchema } from './message-fields.js';

/** Epoch milliseconds (fractional allowed: stage timings are sub-millisecond). */
const epochMs = z.number().nonnegative().finite();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');

export const ALGORITHM_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** `name@range`, range in semver syntax (`1`, `^1.2.0`, `1.2.3`, `*`). */
export const AlgorithmSpec = z
  .string()
  .max(128)
  .regex(/^[a-z0-9][a-z0-9-]{0,63}@[0-9A-Za-z.^~<>=*| -]{1,60}$/, 'must be name@semver-range, e.g. contrast-injection@^1');

export function splitAlgorithmSpec(spec: string): { name: string; range: string } {
  const at = spec.indexOf('@');
  return { name: spec.slice(0, at), range: spec.slice(at + 1) };
}

export const InputRef = z.strictObject({
  /** `s3://bucket/key` */
  uri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}\/[^\s]{1,1024}$/, 'must be s3://bucket/key'),
  size: z.number().int().nonnegative(),
  sha256,
  contentType: z.literal('application/dicom'),
});
export type InputRef = z.infer<typeof InputRef>;

/** Stage timestamps, epoch ms. Each stage stamps its own; results carry them all. */
export const Timings = z.strictObject({
  acquired: epochMs.optional(),
  uploaded: epochMs.optional(),
  published: epochMs.optional(),
  enqueued: epochMs.optional(),
  leased: epochMs.optional(),
  fetched: epochMs.optional(),
  computed: epochMs.optional(),
  resultPublished: epochMs.optional(),
  /** Set by the gateway when the result arrives; never on the wire from the platform. */
  received: epochMs.optional(),
});
export type Timings = z.infer<typeof Timings>;
export const STAGES = ['acquired', 'uploaded', 'published', 'enqueued', 'leased', 'fetched', 'computed', 'resultPublished', 'received'] as const;
export type Stage = (typeof STAGES)[number];

export const RequestV1 = z.strictObject({
  v: z.literal(1),
  id: z.string().regex(REQUEST_ID_PATTERN, 'must be a request id from requestId()'),
  tenant: id,
  device: id,
  algorithm: AlgorithmSpec,
  /** Identifies the run (de-identified UID); part of the request id. */
  instanceUid: z.string().regex(/^[0-9.]{1,64}$/, 'must be a DICOM UID'),
  inputs: z.array(InputRef).min(1).max(MAX_INPUTS_PER_REQUEST),
  priority: z.enum(['clinical', 'bulk']).default('clinical'),
  /** Epoch ms after which the answer is no longer useful. */
  deadline: epochMs.optional(),
  timings: Timings,
  /**
   * The W3C trace the request belongs to (optional; older gateways send none). MQTT 5
   * senders may use the user properties `traceparent` / `tracestate` instead.
   */
  trace: TraceContext.optional(),
});
export type RequestV1 = z.infer<typeof RequestV1>;

export const AlgorithmRef = z.strictObject({
  name: z.string().regex(ALGORITHM_NAME_PATTERN),
  version: z.string().min(5).max(64),
  /** `sha256:<hex>` of the algorithm artifact that produced the result. */
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  /** Model identity when the algorithm runs a model. */
  model: z.strictObject({ name: z.string(), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/) }).optional(),
});
export type AlgorithmRef = z.infer<typeof AlgorithmRef>;


export const ResultV1 = z.strictObject({
  v: z.literal(1),
  requestId: z.string().max(64),
  tenant: id,
  device: id,
  status: z.enum(['ok', 'rejected', 'failed']),
  algorithm: AlgorithmRef.optional(),
  output: z.unknown().optional(),
  error: ErrorDetailSchema.optional(),
  timings: Timings,
  /**
   * `sha256:` of the result as the platform's ledger records it (resultDigest: canonical
   * JSON without this field and without `timings.received`). Optional: absent on results
   * that never reach the ledger (refusals at admission) and from older platforms.
   */
  recordHash: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
  /** The request's trace (its trace id, the span that published the result), when the request carried one or the platform traces. */
  trace: TraceContext.optional(),
});
export type ResultV1 = z.infer<typeof ResultV1>;

export const StatusV1 = z.strictObject({
  v: z.literal(1),
  state: z.enum(['online', 'offline']),
  at: epochMs,
  gatewayVersion: z.string().max(64).optional(),
  /** Leading indicator for the autoscaler: the device is in a procedure. */
  inProcedure: z.boolean().optional(),
  outboxDepth: z.number().int().nonnegative().optional(),
});
export type StatusV1 = z.infer<typeof StatusV1>;

/**
 * How a segment object's bytes encode its frames: absent, they are the frames themselves;
 * `br`, the frames compressed with Brotli (RFC 7932), which a gateway on a slow link uses to
 * put fewer bytes on it. The object's `size` and `sha256` are always the stored bytes'; what
 * a segment expands to must be exactly its frames, and never more than MAX_SEGMENT_BYTES or
 * MAX_SEGMENT_EXPANSION times its stored size.
 */
export const SegmentEncoding = z.enum(['br']);
export type SegmentEncoding = z.infer<typeof SegmentEncoding>;

/**
 * How a gateway sends segments: compressed (`br`, SegmentRef.encoding), as they are
 * (`none`), or compressed while its uplink is slow (`auto`).
 */
export const SegmentEncodingSetting = z.enum(['none', 'br', 'auto']);
export type SegmentEncodingSetting = z.infer<typeof SegmentEncodingSetting>;

export const ConfigV1 = z.strictObject({
  v: z.literal(1),
  /** Monotonic configuration version; the gateway reports the one it applied. */
  version: z.number().int().nonnegative(),
  /** Algorithms the device sends its runs to (the enabled set; the first is the default). */
  algorithms: z.array(AlgorithmSpec).max(16),
  /** Routing rules, first match wins; the gateway validates their fields (see docs/gateway.md). */
  routes: z.array(z.record(z.string(), z.unknown())).max(64).optional(),
  /** De-identification profile options; the gateway validates them (see docs/gateway.md). */
  deidentification: z.record(z.string(), z.unknown()).optional(),
  /** Upload bandwidth cap of the gateway, bytes per second. */
  uploadBandwidthBytesPerSecond: z.number().int().positive().optional(),
  /** Absent: the gateway's own setting. */
  segmentEncoding: SegmentEncodingSetting.optional(),
});
export type ConfigV1 = z.infer<typeof ConfigV1>;

export const ReportedConfigV1 = z.strictObject({
  v: z.literal(1),
  /** The desired version this report answers. */
  version: z.number().int().nonnegative(),
  applied: z.boolean(),
  error: z.string().max(2000).optional(),
  /** The version in effect after this report (the previous one when `applied` is false). */
  activeVersion: z.number().int().nonnegative().optional(),
  /** The configuration in effect, as the gateway applied it. */
  active: z.record(z.string(), z.unknown()).optional(),
  gatewayVersion: z.string().max(64).optional(),
  at: epochMs.optional(),
  /** Why the version was not applied (with `error`): CONFIG_INVALID, CONFIG_STALE, INVALID_JSON, or what the admission probe or confirmation found. */
  code: errorCode.optional(),
});
export type ReportedConfigV1 = z.infer<typeof ReportedConfigV1>;

/**
 * A dry-run admission check a device sends on its own requests topic: would the platform
 * run these algorithms for it, and which version? Nothing is recorded or queued; the answer
 * (`ProbeAnswerV1`) comes on the device's results topic.
 */
export const ProbeV1 = z.strictObject({
  v: z.literal(1),
  kind: z.literal('probe'),
  id: questionIdSchema,
  algorithms: z.array(AlgorithmSpec).min(1).max(16),
  /**
   * Also asks what this platform accepts beyond the first form of the protocol (the answer's
   * `capabilities`). A platform older than this field refuses the whole probe
   * (INVALID_REQUEST), which tells the device the same: nothing more.
   */
  capabilities: z.literal(true).optional(),
});
export type ProbeV1 = z.infer<typeof ProbeV1>;

/** What a platform accepts beyond the first form of the protocol, in a probe answer when the probe asked. */
export const PlatformCapabilities = z.strictObject({
  /** Segment encodings (SegmentRef.encoding) its workers expand. */
  segmentEncodings: z.array(SegmentEncoding).max(8),
});
export type PlatformCapabilities = z.infer<typeof PlatformCapabilities>;

export const ProbeAnswerV1 = z.strictObject({
  ...answerTo('probe-answer'),
  probeId: questionIdSchema,
  algorithms: z
    .array(
      z.strictObject({
        spec: AlgorithmSpec,
        status: z.enum(['accepted', 'refused']),
        /** The version admission resolves the spec to for this device (when accepted). */
        version: z.string().max(64).optional(),
        error: ErrorDetailSchema.optional(),
      }),
    )
    .max(16),
  /** Only when the probe asked (a gateway that never asks never sees the field). */
  capabilities: PlatformCapabilities.optional(),
  at: epochMs,
});
export type ProbeAnswerV1 = z.infer<typeof ProbeAnswerV1>;

/** Serialises a payload, refusing anything over the MQTT payload limit. */
export function encodePayload(value: unknown): Buffer {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new ArteriaError('PAYLOAD_TOO_LARGE', `payload is ${bytes.length} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
  }
  return bytes;
}

/**
 * Parses bytes received on a topic: size limit, JSON, then schema. Errors are typed so
 * the sender can be told exactly what was wrong.
 */
export function decodePayload<S extends z.ZodType>(schema: S, bytes: Uint8Array): z.output<S> {
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) {
    throw new ArteriaError('PAYLOAD_TOO_LARGE', `payload is ${bytes.byteLength} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new ArteriaError('INVALID_JSON', `payload is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new ArteriaError('INVALID_REQUEST', `${where}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
  }
  return parsed.data;
}
