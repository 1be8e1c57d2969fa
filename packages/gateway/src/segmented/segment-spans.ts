import { ATTR, SpanKind, SpanStatusCode, within, type Context, type Span, type Tracer } from '@arteria/telemetry';
import type { OutboxEntry } from '../outbox/outbox.js';

/** Segments of a run that always get a span of their own (the first ones: how the run started). */
export const SEGMENT_SPANS_ALWAYS = 32;
/** A segment at least this large gets a span of its own whatever its index: a run has at most its size / 4 MiB of them. */
export const SEGMENT_SPAN_MIN_BYTES = 4 * 2 ** 20;

/**
 * Whether a segment gets a span of its own. The first SEGMENT_SPANS_ALWAYS do, and any of
 * SEGMENT_SPAN_MIN_BYTES or more; the others only count in their run's upload span. A
 * 2 GB run cut into 10 MB segments has about 200 segment spans, one cut into 40 KB
 * segments 32, where a span per segment would be thousands.
 */
export const wantsSegmentSpan = (index: number, bytes: number): boolean => index < SEGMENT_SPANS_ALWAYS || bytes >= SEGMENT_SPAN_MIN_BYTES;

const SEGMENT = {
  index: 'arteria.segment.index',
  firstFrame: 'arteria.segment.first_frame',
  frames: 'arteria.segment.frames',
  bytes: 'arteria.segment.bytes',
} as const;

interface RunSpans {
  /** `arteria.gateway.upload`: from the header's upload to the last segment stored. */
  upload: Span;
  /** `arteria.gateway.publish`: from the run-open's publish to the run-end's first acknowledgement. */
  publish: Span | undefined;
  /** `arteria.gateway.segment` spans still open (cut, not yet announced), by index. */
  segments: Map<number, Span>;
  /** When each segment was cut, by index, until it is stored. */
  cutAt: Map<number, number>;
  stored: number;
  bytes: number;
  spans: number;
  announced: number;
  lastStoredAt: number | undefined;
  slowest: { index: number; ms: number } | undefined;
}

/**
 * The spans of a run sent while it is acquired, under its `arteria.gateway.request` span:
 * `arteria.gateway.upload` covers the uploads of its header and segments (their count,
 * bytes and slowest segment as attributes), `arteria.gateway.segment` each segment that
 * wantsSegmentSpan (from its cut to its announcement, an event when the store took it), and
 * `arteria.gateway.publish` the announcements (from the run-open's publish to the first
 * acknowledged run-end). In memory like the run's span: after a restart the run's spans
 * start again from what is left to do.
 */
export class SegmentSpans {
  readonly #tracer: Tracer;
  readonly #parentOf: (entry: OutboxEntry) => Context | undefined;
  readonly #runs = new Map<string, RunSpans>();

  /** `parentOf`: the run's context, undefined when the run is not traced. */
  constructor(tracer: Tracer, parentOf: (entry: OutboxEntry) => Context | undefined) {
    this.#tracer = tracer;
    this.#parentOf = parentOf;
  }

  /** The run's header is on its way to the store. */
  headerUploading(entry: OutboxEntry, at: number): void {
    this.#run(entry, at);
  }

  headerStored(entry: OutboxEntry, at: number, bytes: number): void {
    const run = this.#run(entry, at);
    if (run === undefined) return;
    run.bytes += bytes;
    run.upload.addEvent('header stored', { [SEGMENT.bytes]: bytes }, at);
  }

  /** The run-open was acknowledged by the broker: the publish span starts at its publish. */
  openPublished(entry: OutboxEntry, requestId: string, publishedAt: number, acknowledgedAt: number): void {
    const run = this.#run(entry, publishedAt);
    if (run === undefined) return;
    run.upload.setAttribute(ATTR.requestId, requestId);
    run.publish ??= this.#tracer.startSpan('arteria.gateway.publish', { kind: SpanKind.PRODUCER, startTime: publishedAt, attributes: { ...this.#attributes(entry), [ATTR.requestId]: requestId } }, this.#parentOf(entry));
    run.publish.addEvent('run-open acknowledged', acknowledgedAt);
  }

  segmentCut(entry: OutboxEntry, segment: { index: number; firstFrame: number; frameCount: number; size: number }, at: number): void {
    const run = this.#run(entry, at);
    if (run === undefined) return;
    run.cutAt.set(segment.index, at);
    if (!wantsSegmentSpan(segment.index, segment.size)) return;
    const attributes = { [SEGMENT.index]: segment.index, [SEGMENT.firstFrame]: segment.firstFrame, [SEGMENT.frames]: segment.frameCount, [SEGMENT.bytes]: segment.size };
    run.segments.set(segment.index, this.#tracer.startSpan('arteria.gateway.segment', { startTime: at, attributes }, within(run.upload)));
    run.spans += 1;
  }

  segmentStored(entry: OutboxEntry, segment: { index: number; size: number }, at: number): void {
    const run = this.#run(entry, at);
    if (run === undefined) return;
    run.stored += 1;
    run.bytes += segment.size;
    run.lastStoredAt = Math.max(run.lastStoredAt ?? at, at);
    const cutAt = run.cutAt.get(segment.index);
    run.cutAt.delete(segment.index);
    if (cutAt !== undefined && (run.slowest === undefined || at - cutAt > run.slowest.ms)) run.slowest = { index: segment.index, ms: at - cutAt };
    run.segments.get(segment.index)?.addEvent('stored', at);
  }

  segmentAnnounced(entry: OutboxEntry, index: number, at: number): void {
    const run = this.#runs.get(entry.id);
    if (run === undefined) return;
    run.announced += 1;
    run.segments.get(index)?.end(at);
    run.segments.delete(index);
  }

  /** The run-end's first publish was acknowledged: every frame is stored and announced. */
  endPublished(entry: OutboxEntry, publishedAt: number, acknowledgedAt: number): void {
    const run = this.#runs.get(entry.id);
    if (run === undefined) return;
    this.#runs.delete(entry.id);
    this.#endUpload(run, run.lastStoredAt ?? publishedAt);
    const publish = run.publish ?? this.#tracer.startSpan('arteria.gateway.publish', { kind: SpanKind.PRODUCER, startTime: publishedAt, attributes: this.#attributes(entry) }, this.#parentOf(entry));
    publish.setAttribute('arteria.announcements', run.announced);
    publish.addEvent('run-end acknowledged', acknowledgedAt);
    publish.end(acknowledgedAt);
  }

  /**
   * The run ended before its run-end's acknowledgement was seen (failed, withdrawn, answered
   * early): what is open ends now, with the error code when there is one.
   */
  ended(entryId: string, code: string | undefined, at: number): void {
    const run = this.#runs.get(entryId);
    if (run === undefined) return;
    this.#runs.delete(entryId);
    if (code !== undefined) {
      for (const span of [...run.segments.values(), run.upload, ...(run.publish ? [run.publish] : [])]) {
        span.setAttribute(ATTR.errorCode, code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: code });
      }
    }
    this.#endUpload(run, at);
    run.publish?.setAttribute('arteria.announcements', run.announced);
    run.publish?.end(at);
  }

  #endUpload(run: RunSpans, at: number): void {
    for (const span of run.segments.values()) span.end(at); // cut, never announced: the run ended first
    run.segments.clear();
    const slowest = run.slowest === undefined ? {} : { 'arteria.segment.slowest.index': run.slowest.index, 'arteria.segment.slowest.ms': Math.round(run.slowest.ms * 10) / 10 };
    run.upload.setAttributes({ 'arteria.segments': run.stored, 'arteria.upload.bytes': run.bytes, 'arteria.segment.spans': run.spans, ...slowest });
    run.upload.end(at);
  }

  /** The run's spans, started at its first step here; undefined when the run is not traced. */
  #run(entry: OutboxEntry, at: number): RunSpans | undefined {
    const known = this.#runs.get(entry.id);
    if (known !== undefined) return known;
    const parent = this.#parentOf(entry);
    if (parent === undefined) return undefined;
    const upload = this.#tracer.startSpan('arteria.gateway.upload', { startTime: at, attributes: this.#attributes(entry) }, parent);
    const run: RunSpans = { upload, publish: undefined, segments: new Map(), cutAt: new Map(), stored: 0, bytes: 0, spans: 0, announced: 0, lastStoredAt: undefined, slowest: undefined };
    this.#runs.set(entry.id, run);
    return run;
  }

  #attributes(entry: OutboxEntry): Record<string, string> {
    return { [ATTR.algorithm]: entry.algorithm, ...(entry.requestId === undefined ? {} : { [ATTR.requestId]: entry.requestId }) };
  }
}
