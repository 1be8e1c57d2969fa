import { createHash } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import {
  ArteriaError,
  MAX_SEGMENTS_PER_RUN,
  RunOpenV1,
  SEGMENT_CONTENT_TYPE,
  encodePayload,
  epochNow,
  runDigest,
  toArteriaError,
  type PartialResultV1,
  type RunEndV1,
  type SegmentV1,
} from '@arteria/protocol';
import type { GatewayConfig } from './config.js';
import type { DeviceConnection } from './connection.js';
import type { TypedEmitter } from './events.js';
import { errorFields, type GatewayLogger } from './log.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import type { PartStore } from './part-store.js';
import { putOnce } from './put-once.js';
import { readRange } from './run-header.js';
import type { SegmentedRunRecord, SegmentRecord } from './segment-journal.js';
import type { GatewayEvents } from './types.js';

/** How often a followed file is looked at for new frames. */
const FOLLOW_POLL_MS = 50;
/** Frames that wait this long for their segment to fill go up anyway (latency over segment count). */
const SEGMENT_FLUSH_MS = 250;

export interface SegmentStreamerContext {
  config: GatewayConfig;
  outbox: Outbox;
  store: PartStore;
  connection: DeviceConnection;
  logger: GatewayLogger;
  events: TypedEmitter<GatewayEvents>;
  /** Aborts when the gateway closes: every run stops where it is (its state is committed) and resumes on the next start. */
  lifetime: AbortSignal;
  /** Publishes a run's end again now (after its run-open and segments were announced again). */
  republishEnd: (entry: OutboxEntry) => void;
}

interface Follower {
  wake(): void;
  controller: AbortController;
  done: Promise<void>;
}

/** The s3:// URI of a key in the gateway's bucket, and back. */
const keyOf = (uri: string, bucket: string): string => uri.slice(`s3://${bucket}/`.length);

/**
 * Owns the streaming part of a segmented run (its entry stays `pending`): uploads its header
 * object, announces its run-open, then cuts frame-aligned segments from its source (a file
 * still being written, or a frame source's spool file) as frames arrive, uploading and
 * announcing each; once the run is complete it builds the run's end and moves the entry to
 * `uploaded`, from where the publisher sends the end until the result comes. Every step is
 * committed to the segment journal once done, so a restarted gateway goes on from the next
 * step. Partial results and the platform's `RUN_NOT_OPEN` come through here too.
 */
export class SegmentStreamer {
  readonly #ctx: SegmentStreamerContext;
  readonly #followers = new Map<string, Follower>();
  readonly #reannounced = new Map<string, number>();
  #unsubscribe: (() => void)[] = [];

  constructor(context: SegmentStreamerContext) {
    this.#ctx = context;
  }

  /** Follows every streaming run in the outbox, and each new one. */
  start(): void {
    const { outbox, connection } = this.#ctx;
    this.#unsubscribe.push(
      outbox.subscribe((t) => {
        if (t.entry.kind !== 'segmented') return;
        if (t.to === 'pending') this.#follow(t.entry);
        else if (t.to === 'done' || t.to === 'failed' || t.to === 'cancelled') {
          this.#followers.get(t.entry.id)?.controller.abort(new ArteriaError('GATEWAY_NOT_RUNNING', `the run ended (${t.to})`));
          this.#removeHeader(t.entry.id);
        }
      }),
      connection.on('ready', () => {
        for (const follower of this.#followers.values()) follower.wake();
      }),
    );
    for (const entry of outbox.streaming()) this.#follow(entry);
  }

  /** Resolves once every run's follower has stopped (after the lifetime signal aborted). */
  async stopped(): Promise<void> {
    for (const follower of this.#followers.values()) follower.wake();
    await Promise.all([...this.#followers.values()].map((f) => f.done));
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  /** New frames (a frame source) or an explicit end: look at the run now. */
  wake(entryId: string): void {
    this.#followers.get(entryId)?.wake();
  }

  /** A partial result for one of this gateway's runs: announced once per `seq`, however often it comes. */
  partial(partial: PartialResultV1): void {
    const { outbox, logger, events } = this.#ctx;
    const entry = outbox.findByRequestId(partial.requestId);
    if (entry?.kind !== 'segmented') {
      logger.info('ignoring a partial result for a run this gateway does not know', { requestId: partial.requestId });
      return;
    }
    if (!outbox.segments.keepPartial(entry.id, partial)) return;
    logger.info('partial result', { entryId: entry.id, requestId: partial.requestId, seq: partial.seq, event: partial.event.type, frame: partial.event.frame, framesSeen: partial.framesSeen });
    events.emit('partial', { entryId: entry.id, partial });
  }

  /**
   * The platform holds no open run of this id (its run-open was refused for the rate, or
   * lost): the run-open and every segment are announced again, at most once per resend
   * interval, and then its end if it was built.
   */
  runNotOpen(requestId: string): void {
    const { outbox, logger, config } = this.#ctx;
    const entry = outbox.findByRequestId(requestId);
    if (entry?.kind !== 'segmented' || !['pending', 'uploaded', 'published'].includes(entry.state)) return;
    const last = this.#reannounced.get(entry.id) ?? 0;
    if (epochNow() - last < config.resendIntervalMs) return;
    this.#reannounced.set(entry.id, epochNow());
    logger.warn('the platform holds no open run for a segmented run; announcing it again', { entryId: entry.id, requestId });
    outbox.segments.forgetAnnouncements(entry.id);
    if (entry.state === 'pending') this.wake(entry.id);
    else this.#follow(entry);
  }

  #follow(entry: OutboxEntry): void {
    if (this.#followers.has(entry.id) || this.#ctx.lifetime.aborted) return;
    const controller = new AbortController();
    const stop = (): void => controller.abort(this.#ctx.lifetime.reason);
    this.#ctx.lifetime.addEventListener('abort', stop, { once: true });
    let wakeUp: (() => void) | undefined;
    const follower: Follower = { controller, wake: () => wakeUp?.(), done: Promise.resolve() };
    const sleep = (ms: number): Promise<void> =>
      new Promise<void>((resolve) => {
        if (controller.signal.aborted) return resolve();
        const timer = setTimeout(done, ms);
        controller.signal.addEventListener('abort', done, { once: true });
        function done(): void {
          clearTimeout(timer);
          controller.signal.removeEventListener('abort', done);
          wakeUp = undefined;
          resolve();
        }
        wakeUp = done;
      });
    this.#followers.set(entry.id, follower);
    follower.done = this.#stream(entry, controller.signal, sleep)
      .catch((err: unknown) => this.#failed(entry, err, controller.signal))
      .finally(() => {
        this.#ctx.lifetime.removeEventListener('abort', stop);
        this.#followers.delete(entry.id);
      });
  }

  async #stream(entry: OutboxEntry, signal: AbortSignal, sleep: (ms: number) => Promise<void>): Promise<void> {
    const { outbox, config } = this.#ctx;
    const run = outbox.segments.get(entry.id);
    if (run === undefined) throw new ArteriaError('INTERNAL', `segmented run ${entry.id} has no journal`);
    let lastSize = -1;
    let lastGrowthAt = epochNow();
    let waitingSince: number | undefined;
    let retryMs = config.resendIntervalMs;
    while (!signal.aborted) {
      try {
        const now = await this.#announcePending(entry, run, signal);
        if (!now) {
          await sleep(config.resendIntervalMs); // not connected: woken at once by the next connection
          continue;
        }
        const state = outbox.segments.get(entry.id) ?? run;
        const segments = outbox.segments.segments(entry.id);
        const nextFrame = segments.reduce((n, s) => n + s.frameCount, 0);
        const total = state.endedFrames ?? state.plannedFrames;
        if (total !== undefined && nextFrame >= total) {
          if (entry.state === 'pending') this.#finish(entry, state, segments, total);
          else this.#ctx.republishEnd(entry);
          return;
        }
        const size = await stat(entry.sourcePath).then((s) => s.size);
        if (size !== lastSize) {
          lastSize = size;
          lastGrowthAt = epochNow();
        }
        const arrived = Math.floor(Math.max(0, size - state.pixelOffset) / state.frameBytes);
        const available = Math.min(arrived, total ?? arrived) - nextFrame;
        if (available > 0) waitingSince ??= epochNow();
        else waitingSince = undefined;
        const completes = total !== undefined && nextFrame + available === total;
        const flush = waitingSince !== undefined && epochNow() - waitingSince >= SEGMENT_FLUSH_MS && segments.length < MAX_SEGMENTS_PER_RUN / 2;
        if (available > 0 && (available >= state.framesPerSegment || completes || flush)) {
          await this.#cut(entry, state, segments.length, nextFrame, Math.min(available, state.framesPerSegment), signal);
          waitingSince = undefined;
          retryMs = config.resendIntervalMs;
          continue;
        }
        if (epochNow() - lastGrowthAt >= state.stableAfterMs) {
          if (state.endWhenStable && arrived > 0) {
            if (size - state.pixelOffset !== arrived * state.frameBytes) this.#ctx.logger.warn('a run ended by the stability time ends with a partial frame, which is left out', { entryId: entry.id, frames: arrived });
            outbox.segments.end(entry.id, arrived);
            continue;
          }
          const expected = total === undefined ? 'its end' : `${total} frames`;
          throw new ArteriaError('RUN_INCOMPLETE', `the run's source stopped growing at ${arrived} whole frames (of ${expected}) for ${state.stableAfterMs} ms and nothing ended it`);
        }
        await sleep(FOLLOW_POLL_MS);
      } catch (err) {
        if (signal.aborted) return;
        const error = toArteriaError(err, 'UPLOAD_FAILED');
        // Not retried: a source that stopped short or is gone, an object stored with other bytes than the run's (put-once.ts).
        if (error.code === 'RUN_INCOMPLETE' || error.code === 'INPUT_NOT_FOUND' || error.code === 'CHECKSUM_MISMATCH' || (err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
        this.#ctx.logger.warn('a step of a segmented run failed; retrying', { entryId: entry.id, retryInMs: retryMs, ...errorFields(error) });
        this.#ctx.events.emit('error', { entryId: entry.id, error });
        await sleep(retryMs);
        retryMs = Math.min(retryMs * 2, config.maxRetryDelayMs);
      }
    }
  }

  /**
   * Uploads the header and announces the run-open and any uploaded segment not yet
   * announced (after a restart, or when the platform asked). False when not connected.
   */
  async #announcePending(entry: OutboxEntry, run: SegmentedRunRecord, signal: AbortSignal): Promise<boolean> {
    const { outbox, store, connection } = this.#ctx;
    const state = outbox.segments.get(entry.id) ?? run;
    if (state.headerUploadedAt === undefined) {
      await putOnce(store, keyOf(state.headerUri, store.bucket), await readRange(state.headerPath, 0, state.headerSize), signal);
      outbox.segments.headerUploaded(entry.id, epochNow());
    }
    if (connection.state !== 'ready') return false;
    if (state.openAnnouncedAt === undefined) {
      const open = RunOpenV1.parse(JSON.parse(state.openJson));
      const uploaded = outbox.segments.get(entry.id)?.headerUploadedAt ?? epochNow();
      await connection.publishRequest(encodePayload({ ...open, timings: { ...open.timings, uploaded, published: epochNow() } }));
      outbox.segments.openAnnounced(entry.id, epochNow());
    }
    for (const segment of outbox.segments.segments(entry.id)) {
      if (segment.uploadedAt === undefined) await this.#upload(entry, state, segment, signal);
      if (segment.announcedAt === undefined) await this.#announce(entry, segment);
    }
    return true;
  }

  async #announce(entry: OutboxEntry, segment: SegmentRecord): Promise<void> {
    const { config, connection, outbox } = this.#ctx;
    if (entry.requestId === undefined) throw new ArteriaError('INTERNAL', `segmented run ${entry.id} has no run id`);
    const message: SegmentV1 = {
      v: 1,
      kind: 'segment',
      requestId: entry.requestId,
      tenant: config.tenant,
      device: config.device,
      index: segment.index,
      firstFrame: segment.firstFrame,
      frameCount: segment.frameCount,
      object: { uri: segment.uri, size: segment.size, sha256: segment.sha256, contentType: SEGMENT_CONTENT_TYPE },
      acquired: segment.acquired,
    };
    await connection.publishRequest(encodePayload(message));
    outbox.segments.segmentAnnounced(entry.id, segment.index, epochNow());
  }

  /** Cuts the next segment (recorded before its upload), uploads it, then announces it. */
  async #cut(entry: OutboxEntry, run: SegmentedRunRecord, index: number, firstFrame: number, frameCount: number, signal: AbortSignal): Promise<void> {
    const { outbox, store, connection } = this.#ctx;
    const acquired = epochNow();
    const bytes = await readRange(entry.sourcePath, run.pixelOffset + firstFrame * run.frameBytes, frameCount * run.frameBytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const uri = `s3://${store.bucket}/${entry.objectKey}/s${index}`;
    const segment = { index, firstFrame, frameCount, uri, size: bytes.length, sha256, acquired };
    outbox.segments.segmentCut(entry.id, segment);
    await this.#upload(entry, run, { ...segment, uploadedAt: undefined, announcedAt: undefined, announcements: 0 }, signal, bytes);
    if (connection.state === 'ready') await this.#announce(entry, { ...segment, uploadedAt: epochNow(), announcedAt: undefined, announcements: 0 });
  }

  /**
   * Uploads a segment recorded when cut: its bytes (read again from the source after a
   * restart, and checked against the SHA-256 recorded then) to its key, once.
   */
  async #upload(entry: OutboxEntry, run: SegmentedRunRecord, segment: SegmentRecord, signal: AbortSignal, cut?: Buffer): Promise<void> {
    const { outbox, store } = this.#ctx;
    const bytes = cut ?? (await readRange(entry.sourcePath, run.pixelOffset + segment.firstFrame * run.frameBytes, segment.frameCount * run.frameBytes));
    if (cut === undefined && createHash('sha256').update(bytes).digest('hex') !== segment.sha256) {
      throw new ArteriaError('CHECKSUM_MISMATCH', `frames ${segment.firstFrame}-${segment.firstFrame + segment.frameCount - 1} of ${entry.sourcePath} changed after segment ${segment.index} was cut from them`);
    }
    await putOnce(store, keyOf(segment.uri, store.bucket), bytes, signal);
    outbox.segments.segmentUploaded(entry.id, segment.index, epochNow());
    const total = run.endedFrames ?? run.plannedFrames;
    this.#ctx.events.emit('progress', { entryId: entry.id, loadedBytes: (segment.firstFrame + segment.frameCount) * run.frameBytes, totalBytes: total === undefined ? 0 : total * run.frameBytes, part: segment.index + 1 });
  }

  /** Every frame is up and announced: the run's end is built and the entry moves on to the publisher. */
  #finish(entry: OutboxEntry, run: SegmentedRunRecord, segments: SegmentRecord[], frames: number): void {
    const { config, outbox } = this.#ctx;
    if (entry.requestId === undefined) throw new ArteriaError('INTERNAL', `segmented run ${entry.id} has no run id`);
    if (frames === 0 || segments.length === 0) throw new ArteriaError('RUN_INCOMPLETE', 'the run ended before its first frame');
    const digest = runDigest(run.headerSha256, segments.map((s) => s.sha256));
    const end: RunEndV1 = { v: 1, kind: 'run-end', requestId: entry.requestId, tenant: config.tenant, device: config.device, segments: segments.length, frames, digest, acquired: segments.at(-1)?.acquired ?? epochNow() };
    const size = run.headerSize + frames * run.frameBytes;
    outbox.markUploaded(entry.id, { uri: run.headerUri, size, sha256: digest, requestId: entry.requestId, requestJson: JSON.stringify(end) }, epochNow());
  }

  #failed(entry: OutboxEntry, err: unknown, signal: AbortSignal): void {
    if (signal.aborted) return;
    const error = (err as NodeJS.ErrnoException).code === 'ENOENT' ? new ArteriaError('INPUT_NOT_FOUND', `the run's source ${entry.sourcePath} is gone`, { cause: err }) : toArteriaError(err, 'INTERNAL');
    this.#ctx.outbox.fail(entry.id, error, epochNow());
  }

  #removeHeader(entryId: string): void {
    const run = this.#ctx.outbox.segments.get(entryId);
    if (run !== undefined) void rm(run.headerPath, { force: true }).catch(() => undefined); // a spooled copy; a leftover only costs disk
  }
}
