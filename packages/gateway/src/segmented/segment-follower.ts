import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import {
  ArteriaError,
  MAX_FRAMES_PER_RUN,
  MAX_SEGMENTS_PER_RUN,
  MAX_SEGMENT_BYTES,
  RunOpenV1,
  SEGMENT_CONTENT_TYPE,
  encodePayload,
  epochNow,
  runDigest,
  toArteriaError,
  type RunEndV1,
  type SegmentEncoding,
  type SegmentEncodingSetting,
  type SegmentV1,
} from '@arteria/protocol';
import type { BandwidthLimiter } from '../upload/bandwidth.js';
import type { GatewayConfig } from '../config/config.js';
import type { DeviceConnection } from '../connection/connection.js';
import type { TypedEmitter } from '../events.js';
import { syncFile } from './frame-source.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { Outbox, OutboxEntry } from '../outbox/outbox.js';
import type { PartStore } from '../upload/part-store.js';
import { isFinalUploadError, putOnce } from '../upload/put-once.js';
import { readRange } from './run-header.js';
import type { RunTraces } from '../runs/run-traces.js';
import type { SegmentedRunRecord, SegmentRecord } from '../outbox/segment-journal.js';
import { SegmentBuffers } from './segment-buffers.js';
import { chosenEncoding, encodeSegment, encodedAs } from './segment-encoding.js';
import type { LinkMeter } from '../upload/link-meter.js';
import { SegmentUploads } from './segment-uploads.js';
import type { GatewayEvents } from '../types.js';
import type { UploadSlots } from '../upload/upload-slots.js';

/** How often a followed file is looked at for new frames. */
const FOLLOW_POLL_MS = 50;
/** Frames that wait this long for their segment to fill go up anyway (latency over segment count). */
const SEGMENT_FLUSH_MS = 250;

export interface SegmentFollowerContext {
  config: GatewayConfig;
  outbox: Outbox;
  store: PartStore;
  connection: DeviceConnection;
  logger: GatewayLogger;
  events: TypedEmitter<GatewayEvents>;
  /** The upload bandwidth cap every upload of the gateway shares. */
  limiter: BandwidthLimiter;
  /** The upload slots every upload of the gateway shares: a segment takes one while it goes up. */
  slots: UploadSlots;
  /** What the uplink carried lately (each segment's upload records into it): `segmentEncoding: auto` follows it. */
  meter: LinkMeter;
  /** Publishes a run's end again now (after its run-open and segments were announced again). */
  republishEnd: (entry: OutboxEntry) => void;
  /** How the segments cut from now on are stored (the fleet config's setting, else the option); each segment records its own. */
  segmentEncoding: () => SegmentEncodingSetting;
  /** The encodings the platform says it expands (a segment is compressed only with one of them). */
  platformEncodings: (algorithm: string) => Promise<ReadonlySet<SegmentEncoding>>;
  /** The run's upload, segment and publish spans (traces.segments). */
  traces: RunTraces;
  /** A frame source's frames that are durable (fsynced), while its FrameSource is open in this process; undefined otherwise. */
  durableFrames?: (entryId: string) => number | undefined;
}

/**
 * Frames of a run's next segment: `framesPerSegment`, and more once half the segments a run
 * may have are used, so that a run of up to MAX_FRAMES_PER_RUN frames never needs more than
 * MAX_SEGMENTS_PER_RUN (the platform refuses a segment index past it, ending the run: at 10
 * frames a segment that was any run over 40960 frames), never over MAX_SEGMENT_BYTES.
 */
export function nextSegmentFrames(framesPerSegment: number, segments: number, nextFrame: number, frameBytes: number): number {
  if (segments < MAX_SEGMENTS_PER_RUN / 2) return framesPerSegment;
  const spread = Math.ceil(Math.max(0, MAX_FRAMES_PER_RUN - nextFrame) / Math.max(1, MAX_SEGMENTS_PER_RUN - segments));
  return Math.max(1, Math.min(Math.max(framesPerSegment, spread), Math.floor(MAX_SEGMENT_BYTES / frameBytes)));
}

/** The s3:// URI of a key in the gateway's bucket, and back. */
const keyOf = (uri: string, bucket: string): string => uri.slice(`s3://${bucket}/`.length);

/**
 * Follows one streaming run until its end is built: uploads its header object, announces
 * its run-open, then cuts frame-aligned segments from its source as frames arrive. Each
 * segment is recorded when cut and goes to the store while the next ones are cut (up to
 * `uploadConcurrency` at once); the segments are announced strictly in index order as
 * their uploads complete. Once every frame is up and announced, the run's end is built and
 * the entry moves to `uploaded`. Every step is in the segment journal, so a follower
 * started again (after a restart, an error, or RUN_NOT_OPEN) goes on from there.
 */
export class SegmentFollower {
  readonly #ctx: SegmentFollowerContext;
  readonly #entry: OutboxEntry;
  readonly #run: SegmentedRunRecord;
  readonly #signal: AbortSignal;
  readonly #uploads: SegmentUploads;
  /** The segments' memory, taken by each cut and given back once its segment is stored. */
  readonly #buffers: SegmentBuffers;
  #wakeUp: (() => void) | undefined;
  /** The highest segment index whose upload grant was asked for ahead. */
  #preparedUpload = -1;

  constructor(context: SegmentFollowerContext, entry: OutboxEntry, signal: AbortSignal) {
    this.#ctx = context;
    this.#entry = entry;
    this.#signal = signal;
    const run = context.outbox.segments.get(entry.id);
    if (run === undefined) throw new ArteriaError('INTERNAL', `segmented run ${entry.id} has no journal`);
    this.#run = run;
    this.#buffers = new SegmentBuffers(context.config.uploadConcurrency);
    // A segment is cut only when one on its way is stored. Cutting one more ahead, to wait for an upload slot already
    // read and hashed (main 57f66bb, reverted), ended the 419 MB uploads over the shaped link no earlier and the runs
    // later (medians of 8 rounds, load 5-7), for 16 MiB more of memory per run.
    this.#uploads = new SegmentUploads({
      limit: context.config.uploadConcurrency,
      upload: (segment, bytes) => this.#upload(segment, bytes),
      announce: () => this.#announceUploaded(),
      progressed: () => this.wake(),
    });
  }

  /** Look at the run now (new frames, an end, a connection, an upload done). */
  wake(): void {
    this.#wakeUp?.();
  }

  /** Follows the run until its end is built (or the signal aborts); nothing of it is on its way when this resolves. */
  async run(): Promise<void> {
    try {
      // A frame source's spool with no FrameSource open (after a restart) may hold frames a stopped process wrote and never synced:
      // synced before any is cut, so no segment holds a frame a power cut could still take.
      if (this.#run.plannedFrames === undefined && this.#ctx.durableFrames?.(this.#entry.id) === undefined) await syncFile(this.#entry.sourcePath);
      await this.#follow();
    } finally {
      await this.#uploads.settle();
    }
  }

  async #follow(): Promise<void> {
    const { outbox, config } = this.#ctx;
    const entry = this.#entry;
    let lastSize = -1;
    let lastGrowthAt = epochNow();
    let waitingSince: number | undefined;
    let retryMs = config.resendIntervalMs;
    while (!this.#signal.aborted) {
      try {
        this.#uploads.throwIfFailed();
        // The header and the run-open go before any segment, on a link still empty: with segments cut and uploaded beside
        // them (main 4c91819, reverted), the segments' bytes ahead of them in the uplink's queue delayed the run-open by
        // about 200 ms on a shaped 1 Gb/s link, and the upload ended no earlier.
        if (!(await this.#open())) {
          await this.#sleep(config.resendIntervalMs); // not connected: woken at once by the next connection
          continue;
        }
        const state = outbox.segments.get(entry.id) ?? this.#run;
        const segments = outbox.segments.segments(entry.id);
        // Segments cut before a restart or an error whose upload is not recorded go again (the same bytes, to the same key).
        for (const segment of segments) if (segment.uploadedAt === undefined) this.#uploads.start(segment);
        if (segments.some((s) => s.uploadedAt !== undefined && s.announcedAt === undefined)) this.#uploads.announce();
        const nextFrame = segments.reduce((n, s) => n + s.frameCount, 0);
        const total = state.endedFrames ?? state.plannedFrames;
        if (total !== undefined && nextFrame >= total) {
          if (await this.#allAnnounced()) {
            if (this.#signal.aborted) return; // stopped meanwhile (closing, or to be sent whole): nothing more of it here
            if (entry.state === 'pending') this.#finish(state, outbox.segments.segments(entry.id), total);
            else this.#ctx.republishEnd(entry);
            return;
          }
          await this.#sleep(FOLLOW_POLL_MS);
          continue;
        }
        const size = await stat(entry.sourcePath).then((s) => s.size);
        if (size !== lastSize) {
          lastSize = size;
          lastGrowthAt = epochNow();
        }
        const written = Math.floor(Math.max(0, size - state.pixelOffset) / state.frameBytes);
        // A frame source's frames are cut only once they are durable (frame-source.ts); a followed file's as they are written.
        const arrived = Math.min(written, this.#ctx.durableFrames?.(entry.id) ?? written);
        const available = Math.min(arrived, total ?? arrived) - nextFrame;
        const perSegment = nextSegmentFrames(state.framesPerSegment, segments.length, nextFrame, state.frameBytes);
        // The next segment's upload grant is asked for once one of its frames is here, so its PUT need not wait for one,
        // and never for a segment that will not be cut (the run's last one was). A complete file's segments all exist:
        // their grants are asked for uploadConcurrency ahead (a grant names one key, so each PUT would wait a round trip).
        const ahead = state.wholeFile ? Math.min(config.uploadConcurrency, Math.ceil(available / perSegment)) : 1;
        for (let k = 0; available > 0 && k < ahead; k++) this.#prepareUpload(segments.length + k);
        if (!this.#uploads.hasRoom) {
          await this.#sleep(FOLLOW_POLL_MS); // woken as soon as an upload is done
          continue;
        }
        if (available > 0) waitingSince ??= epochNow();
        else waitingSince = undefined;
        const completes = total !== undefined && nextFrame + available === total;
        const flush = waitingSince !== undefined && epochNow() - waitingSince >= SEGMENT_FLUSH_MS && segments.length < MAX_SEGMENTS_PER_RUN / 2;
        if (available > 0 && (available >= perSegment || completes || flush)) {
          await this.#cut(state, segments.length, nextFrame, Math.min(available, perSegment));
          waitingSince = undefined;
          retryMs = config.resendIntervalMs;
          continue;
        }
        if (this.#uploads.inFlight === 0 && epochNow() - lastGrowthAt >= state.stableAfterMs) {
          if (state.endWhenStable && arrived > 0) {
            if (size - state.pixelOffset !== written * state.frameBytes) this.#ctx.logger.warn('a run ended by the stability time ends with a partial frame, which is left out', { entryId: entry.id, frames: arrived });
            outbox.segments.end(entry.id, arrived);
            continue;
          }
          const expected = total === undefined ? 'its end' : `${total} frames`;
          throw new ArteriaError('RUN_INCOMPLETE', `the run's source stopped growing at ${arrived} whole frames (of ${expected}) for ${state.stableAfterMs} ms and nothing ended it`);
        }
        await this.#sleep(FOLLOW_POLL_MS);
      } catch (err) {
        await this.#uploads.settle(); // nothing of the run on its way before it starts over from the journal
        if (this.#signal.aborted) return;
        const error = toArteriaError(err, 'UPLOAD_FAILED');
        // Not retried: a source that stopped short or is gone, an object stored with other bytes than the run's.
        if (error.code === 'RUN_INCOMPLETE' || isFinalUploadError(error) || (err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
        this.#ctx.logger.warn('a step of a segmented run failed; retrying', { entryId: entry.id, retryInMs: retryMs, ...errorFields(error) });
        this.#ctx.events.emit('error', { entryId: entry.id, error });
        await this.#sleep(retryMs);
        retryMs = Math.min(retryMs * 2, config.maxRetryDelayMs);
      }
    }
  }

  /** Every frame is cut: waits for the uploads, then announces what is left; true once every segment is announced. */
  async #allAnnounced(): Promise<boolean> {
    await this.#uploads.drain();
    await this.#announceUploaded(); // the announcer is idle after drain(): in order, here
    return this.#ctx.outbox.segments.segments(this.#entry.id).every((s) => s.uploadedAt !== undefined && s.announcedAt !== undefined);
  }

  /** Uploads the header and announces the run-open when not done yet. False when not connected. */
  async #open(): Promise<boolean> {
    const { outbox, store, connection } = this.#ctx;
    const state = outbox.segments.get(this.#entry.id) ?? this.#run;
    const spans = this.#ctx.traces.segments;
    if (state.headerUploadedAt === undefined) {
      spans.headerUploading(this.#entry, epochNow());
      await this.#ctx.limiter.takeSliced(state.headerSize, this.#signal);
      await putOnce(store, keyOf(state.headerUri, store.bucket), await readRange(state.headerPath, 0, state.headerSize), this.#signal);
      const at = epochNow();
      outbox.segments.headerUploaded(this.#entry.id, at);
      spans.headerStored(this.#entry, at, state.headerSize);
    }
    if (connection.state !== 'ready') return false;
    if (state.openAnnouncedAt === undefined) {
      const open = RunOpenV1.parse(JSON.parse(state.openJson));
      const uploaded = outbox.segments.get(this.#entry.id)?.headerUploadedAt ?? epochNow();
      const published = epochNow();
      await connection.publishRequest(encodePayload({ ...open, timings: { ...open.timings, uploaded, published } }));
      const at = epochNow();
      outbox.segments.openAnnounced(this.#entry.id, at);
      spans.openPublished(this.#entry, open.id, published, at);
    }
    return true;
  }

  /** Announces, in index order, the uploaded segments not yet announced, up to the first one still uploading (only after the run-open). */
  async #announceUploaded(): Promise<void> {
    const { outbox, connection } = this.#ctx;
    for (const segment of outbox.segments.segments(this.#entry.id)) {
      if (segment.uploadedAt === undefined || connection.state !== 'ready') return;
      if (segment.announcedAt !== undefined) continue;
      if (outbox.segments.get(this.#entry.id)?.openAnnouncedAt === undefined) return; // the platform asked for the run again: its run-open first
      await this.#announce(segment);
    }
  }

  async #announce(segment: SegmentRecord): Promise<void> {
    const { config, connection, outbox } = this.#ctx;
    if (this.#entry.requestId === undefined) throw new ArteriaError('INTERNAL', `segmented run ${this.#entry.id} has no run id`);
    const message: SegmentV1 = {
      v: 1,
      kind: 'segment',
      requestId: this.#entry.requestId,
      tenant: config.tenant,
      device: config.device,
      index: segment.index,
      firstFrame: segment.firstFrame,
      frameCount: segment.frameCount,
      object: { uri: segment.uri, size: segment.size, sha256: segment.sha256, contentType: SEGMENT_CONTENT_TYPE, ...(segment.encoding === undefined ? {} : { encoding: segment.encoding }) },
      acquired: segment.acquired,
    };
    await connection.publishRequest(encodePayload(message));
    const at = epochNow();
    outbox.segments.segmentAnnounced(this.#entry.id, segment.index, at);
    this.#ctx.traces.segments.segmentAnnounced(this.#entry, segment.index, at);
  }

  /** Cuts the next segment: encoded and recorded before its upload, which starts at once. */
  async #cut(run: SegmentedRunRecord, index: number, firstFrame: number, frameCount: number): Promise<void> {
    const { outbox } = this.#ctx;
    const acquired = epochNow();
    const frames = await this.#frames(firstFrame, frameCount);
    const wanted = chosenEncoding(this.#ctx.segmentEncoding(), { capBytesPerSecond: this.#ctx.limiter.bytesPerSecond, measuredBytesPerSecond: () => this.#ctx.meter.bytesPerSecond() });
    // A platform older than an encoding would refuse the segment, and the run with it.
    const setting = wanted === 'none' || (await this.#ctx.platformEncodings(this.#entry.algorithm)).has(wanted) ? wanted : 'none';
    const { bytes, encoding } = await encodeSegment(frames, setting);
    if (bytes !== frames) this.#buffers.give(frames); // the compressed copy goes up; the frames' memory is free for the next cut
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const segment = { index, firstFrame, frameCount, uri: this.#segmentUri(index), size: bytes.length, sha256, encoding, acquired };
    outbox.segments.segmentCut(this.#entry.id, segment);
    this.#ctx.traces.segments.segmentCut(this.#entry, segment, acquired);
    this.#uploads.start({ ...segment, uploadedAt: undefined, announcedAt: undefined, announcements: 0 }, bytes);
  }

  /** Asks for segment `index`'s upload grant now (without store keys), once. */
  #prepareUpload(index: number): void {
    if (index <= this.#preparedUpload) return;
    this.#preparedUpload = index;
    const { store } = this.#ctx;
    store.preparePut?.(keyOf(this.#segmentUri(index), store.bucket), this.#signal);
  }

  #segmentUri(index: number): string {
    return `s3://${this.#ctx.store.bucket}/${this.#entry.objectKey}/s${index}`;
  }

  /**
   * Uploads a segment recorded when cut: its bytes (read again from the source after a
   * restart or an error, encoded as recorded, and checked against the SHA-256 recorded
   * then) to its key, once.
   */
  async #upload(segment: SegmentRecord, cut: Buffer | undefined): Promise<void> {
    const { outbox, store } = this.#ctx;
    const run = this.#run;
    const bytes = cut ?? (await this.#again(segment));
    const release = await this.#ctx.slots.take(1, this.#signal);
    try {
      // Timed from the slot on, the cap's waits included: they are the link as this gateway may use it.
      const started = performance.now();
      await this.#ctx.limiter.takeSliced(bytes.length, this.#signal);
      await putOnce(store, keyOf(segment.uri, store.bucket), bytes, this.#signal);
      this.#ctx.meter.record(bytes.length, started, performance.now());
    } finally {
      release();
    }
    this.#buffers.give(bytes); // stored: the store has read every byte
    const storedAt = epochNow();
    outbox.segments.segmentUploaded(this.#entry.id, segment.index, storedAt);
    this.#ctx.traces.segments.segmentStored(this.#entry, segment, storedAt);
    const total = (outbox.segments.get(this.#entry.id) ?? run).endedFrames ?? run.plannedFrames;
    this.#ctx.events.emit('progress', { entryId: this.#entry.id, loadedBytes: (segment.firstFrame + segment.frameCount) * run.frameBytes, totalBytes: total === undefined ? 0 : total * run.frameBytes, part: segment.index + 1 });
  }

  /** Frames of the run read from its source, into a segment buffer. */
  #frames(firstFrame: number, frameCount: number): Promise<Buffer> {
    const { pixelOffset, frameBytes } = this.#run;
    const length = frameCount * frameBytes;
    return readRange(this.#entry.sourcePath, pixelOffset + firstFrame * frameBytes, length, this.#buffers.take(length));
  }

  /** A segment's bytes as recorded when cut, from its frames read again (after a restart or an error). */
  async #again(segment: SegmentRecord): Promise<Buffer> {
    const frames = await this.#frames(segment.firstFrame, segment.frameCount);
    const bytes = segment.encoding === undefined ? frames : await encodedAs(frames, segment.encoding);
    if (bytes !== frames) this.#buffers.give(frames);
    if (createHash('sha256').update(bytes).digest('hex') !== segment.sha256) {
      // Brotli at fixed parameters gives the same bytes for the same frames with one zlib; a gateway upgraded mid-run may not.
      const how = segment.encoding === undefined ? '' : ` (or this gateway's ${segment.encoding} encoder compresses them differently from the one that cut it)`;
      throw new ArteriaError('CHECKSUM_MISMATCH', `frames ${segment.firstFrame}-${segment.firstFrame + segment.frameCount - 1} of ${this.#entry.sourcePath} changed after segment ${segment.index} was cut from them${how}`);
    }
    return bytes;
  }

  /** Every frame is up and announced: the run's end is built and the entry moves on to the publisher. */
  #finish(run: SegmentedRunRecord, segments: SegmentRecord[], frames: number): void {
    const { config, outbox } = this.#ctx;
    const entry = this.#entry;
    if (entry.requestId === undefined) throw new ArteriaError('INTERNAL', `segmented run ${entry.id} has no run id`);
    if (frames === 0 || segments.length === 0) throw new ArteriaError('RUN_INCOMPLETE', 'the run ended before its first frame');
    const digest = runDigest(run.headerSha256, segments.map((s) => s.sha256));
    const end: RunEndV1 = { v: 1, kind: 'run-end', requestId: entry.requestId, tenant: config.tenant, device: config.device, segments: segments.length, frames, digest, acquired: segments.at(-1)?.acquired ?? epochNow() };
    const size = run.headerSize + frames * run.frameBytes;
    outbox.markUploaded(entry.id, { uri: run.headerUri, size, sha256: digest, requestId: entry.requestId, requestJson: JSON.stringify(end) }, epochNow());
  }

  /** Waits `ms`, or until woken or aborted. */
  #sleep(ms: number): Promise<void> {
    const signal = this.#signal;
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.#wakeUp === done) this.#wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wakeUp = done;
    });
  }
}
