import { createHash } from 'node:crypto';
import { z } from 'zod';
import { REQUEST_ID_PATTERN, requestId } from './ids.js';
import { idSchema as id } from './message-fields.js';
import { AlgorithmRef, AlgorithmSpec, InputRef, RequestV1, SegmentEncoding, Timings } from './schemas.js';
import { TraceContext } from './trace-context.js';

/**
 * Segmented runs: a run sent while it is still being acquired. The gateway opens the run
 * (`RunOpenV1`, naming the object holding the run's Part 10 header), uploads the run's
 * frames in frame-aligned segments as they arrive and announces each (`SegmentV1`), then
 * ends the run (`RunEndV1`) with its frame count and a digest over every object, or abandons
 * it (`RunAbandonV1`) when it will never end. All of them go on the device's own requests topic; partial results (`PartialResultV1`) and the final
 * `ResultV1` come on its results topic. See docs/protocol.md, "Segmented runs".
 */

const epochMs = z.number().nonnegative().finite();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters');
const runId = z.string().regex(REQUEST_ID_PATTERN, 'must be a request id from segmentedRunId()');

/** Content type of a segment object: the native pixel bytes of whole frames, nothing else. */
export const SEGMENT_CONTENT_TYPE = 'application/x-arteria-frames';
/** Most segments one run may have (a 2000-frame run cut a frame per segment fits). */
export const MAX_SEGMENTS_PER_RUN = 4096;
/** Most frames one run may have. */
export const MAX_FRAMES_PER_RUN = 65_536;
/**
 * Largest segment object: a worker reads a segment whole, so this (not the run's size)
 * bounds its memory. A gateway cuts segments of whole frames well under it.
 */
export const MAX_SEGMENT_BYTES = 64 * 2 ** 20;
/** Largest header object of a segmented run (read whole, and kept by a worker for the run's steps). */
export const MAX_SEGMENTED_HEADER_BYTES = 16 * 2 ** 20;

/**
 * Most a compressed segment may expand, as a multiple of its stored size. X-ray frames
 * compress 1.2-2x; a device that could announce a few stored bytes expanding to 64 MiB of
 * frames would make the platform fold a run for almost nothing uploaded. Frames that
 * compress more (dark or blank ones) go up as they are.
 */
export const MAX_SEGMENT_EXPANSION = 32;

export const SegmentRef = z.strictObject({
  uri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}\/[^\s]{1,1024}$/, 'must be s3://bucket/key'),
  size: z.number().int().positive(),
  sha256,
  contentType: z.literal(SEGMENT_CONTENT_TYPE),
  encoding: SegmentEncoding.optional(),
});
export type SegmentRef = z.infer<typeof SegmentRef>;

/** What every message about a run already opened starts with: its kind, the run and its device. */
function runMessage<K extends string>(kind: K) {
  return { v: z.literal(1), kind: z.literal(kind), requestId: runId, tenant: id, device: id };
}

export const RunOpenV1 = z.strictObject({
  v: z.literal(1),
  kind: z.literal('run-open'),
  /** segmentedRunId(): also the id of the run's final result. */
  id: runId,
  tenant: id,
  device: id,
  algorithm: AlgorithmSpec,
  instanceUid: z.string().regex(/^[0-9.]{1,64}$/, 'must be a DICOM UID'),
  /**
   * The run's Part 10 header: its bytes up to the value of Pixel Data (7FE0,0010), which
   * must be native (uncompressed). Its Number of Frames may be what the modality planned;
   * the run's end says how many frames it has.
   */
  header: InputRef,
  priority: z.enum(['clinical', 'bulk']).default('clinical'),
  deadline: epochMs.optional(),
  timings: Timings,
  trace: TraceContext.optional(),
});
export type RunOpenV1 = z.infer<typeof RunOpenV1>;

export const SegmentV1 = z.strictObject({
  ...runMessage('segment'),
  /** 0, 1, 2, ... in frame order, without gaps. */
  index: z.number().int().nonnegative().max(MAX_SEGMENTS_PER_RUN - 1),
  /** The segment's first frame in the run (0-based): the previous segment's first frame plus its frame count. */
  firstFrame: z.number().int().nonnegative().max(MAX_FRAMES_PER_RUN - 1),
  frameCount: z.number().int().positive().max(MAX_FRAMES_PER_RUN),
  object: SegmentRef,
  /** When the segment's last frame was acquired at the gateway. */
  acquired: epochMs.optional(),
});
export type SegmentV1 = z.infer<typeof SegmentV1>;

export const RunEndV1 = z.strictObject({
  ...runMessage('run-end'),
  segments: z.number().int().positive().max(MAX_SEGMENTS_PER_RUN),
  frames: z.number().int().positive().max(MAX_FRAMES_PER_RUN),
  /** runDigest(): the header's and every segment's SHA-256, in order. */
  digest: sha256,
  /** When the run's last frame was acquired at the gateway. */
  acquired: epochMs.optional(),
});
export type RunEndV1 = z.infer<typeof RunEndV1>;

/**
 * The device gives up a run it opened and will not end (its source stopped short for good
 * or is gone, or its sender withdrew it): the platform records RUN_ABANDONED as the run's
 * result, answers with it, and releases what it holds of the run.
 */
export const RunAbandonV1 = z.strictObject({
  ...runMessage('run-abandon'),
  /** Why, for the operator: the gateway's error code (RUN_INCOMPLETE, INPUT_NOT_FOUND, ...) or WITHDRAWN, and what it said. */
  reason: z.strictObject({ code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an upper-case code'), message: z.string().max(500).optional() }),
  /** When the gateway gave the run up. */
  at: epochMs,
});
export type RunAbandonV1 = z.infer<typeof RunAbandonV1>;

/** One partial event, as the algorithm reported it (`key`, `type`, `frame` and its own fields). */
export const PartialEventV1 = z.looseObject({ key: z.string().min(1).max(128), type: z.string().min(1).max(64), frame: z.number().int().nonnegative() });
export type PartialEventV1 = z.infer<typeof PartialEventV1>;

/**
 * An event the algorithm is already certain of, before the run ends. `seq` numbers the
 * run's partial results from 0; a device keeps the first of each `seq` (a worker replaced
 * mid-run may send one again). The final ResultV1 is the authoritative answer.
 */
export const PartialResultV1 = z.strictObject({
  ...runMessage('partial'),
  seq: z.number().int().nonnegative(),
  /** Frames the algorithm had seen when it reported the event. */
  framesSeen: z.number().int().positive(),
  event: PartialEventV1,
  algorithm: AlgorithmRef,
  at: epochMs,
});
export type PartialResultV1 = z.infer<typeof PartialResultV1>;

export interface SegmentedRunIdParts {
  tenant: string;
  device: string;
  instanceUid: string;
  algorithm: string;
  /** The header object's `s3://` URI and SHA-256. */
  headerUri: string;
  headerSha256: string;
}

/**
 * The id of a segmented run: stable over resends (tenant, device, instance, algorithm and
 * the header object), and never that of a whole-file request (whose digest is the whole
 * file's and whose input is another object).
 */
export function segmentedRunId(parts: SegmentedRunIdParts): string {
  return requestId({ tenant: parts.tenant, device: parts.device, instanceUid: parts.instanceUid, sha256: parts.headerSha256, algorithm: parts.algorithm, inputUris: ['segmented', parts.headerUri] });
}

/**
 * The digest a run's end carries: SHA-256 over the header's and each segment's SHA-256
 * (hex, one per line, in order). It commits to every byte of the run without anyone
 * hashing the run twice, and a worker checks it from the digests it verified.
 */
export function runDigest(headerSha256: string, segmentSha256s: readonly string[]): string {
  return createHash('sha256').update([headerSha256, ...segmentSha256s].join('\n')).digest('hex');
}

/** The request the ledger records and the tasks carry for an opened run: the header is its one input. */
export function requestOfRunOpen(open: RunOpenV1): RequestV1 {
  return {
    v: 1,
    id: open.id,
    tenant: open.tenant,
    device: open.device,
    algorithm: open.algorithm,
    instanceUid: open.instanceUid,
    inputs: [open.header],
    priority: open.priority,
    ...(open.deadline === undefined ? {} : { deadline: open.deadline }),
    timings: open.timings,
    ...(open.trace === undefined ? {} : { trace: open.trace }),
  };
}
