import { rm } from 'node:fs/promises';
import { ArteriaError, epochNow, toArteriaError, type PartialResultV1 } from '@arteria/protocol';
import type { OutboxEntry } from '../outbox/outbox.js';
import { SegmentFollower, type SegmentFollowerContext } from './segment-follower.js';

const LIVE: ReadonlySet<string> = new Set(['pending', 'uploaded', 'published']);

export interface SegmentStreamerContext extends SegmentFollowerContext {
  /** Aborts when the gateway closes: every run stops where it is (its state is committed) and resumes on the next start. */
  lifetime: AbortSignal;
  /** A segmented run's entry ended (failed, withdrawn) and its follower stopped: abandon it on the platform if the outbox noted so. */
  abandon: (entryId: string) => void;
}

/** A re-open that the platform answers RUN_NOT_OPEN again waits this long before the next, doubling up to the resend interval. */
const REOPEN_BACKOFF_MS = 200;

interface Reopen {
  /** When the run was last announced again. */
  lastAt: number;
  /** Re-opens in a row, each answered RUN_NOT_OPEN within a resend interval of the one before. */
  streak: number;
  timer: NodeJS.Timeout | undefined;
}

interface Follower {
  wake(): void;
  controller: AbortController;
  done: Promise<void>;
}

/**
 * Owns the streaming part of a segmented run (its entry stays `pending`): a SegmentFollower
 * per run uploads its header object, announces its run-open, then cuts frame-aligned
 * segments from its source (a file still being written, or a frame source's spool file) as
 * frames arrive, uploading several at once and announcing them in order; once the run is
 * complete it builds the run's end and moves the entry to `uploaded`, from where the
 * publisher sends the end until the result comes. Every step is committed to the segment
 * journal once done, so a restarted gateway goes on from the next step. Partial results and
 * the platform's `RUN_NOT_OPEN` come through here too.
 */
export class SegmentStreamer {
  readonly #ctx: SegmentStreamerContext;
  readonly #followers = new Map<string, Follower>();
  readonly #reopens = new Map<string, Reopen>();
  /** Durable frames of each run whose FrameSource is open in this process. */
  readonly #durable = new Map<string, number>();
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
          const follower = this.#followers.get(t.entry.id);
          follower?.controller.abort(new ArteriaError('GATEWAY_NOT_RUNNING', `the run ended (${t.to})`));
          this.#durable.delete(t.entry.id);
          this.#forgetReopen(t.entry.id);
          this.#removeHeader(t.entry.id);
          // Once nothing of the run is on its way: no segment of it follows its abandon.
          if (t.to !== 'done') void (follower?.done ?? Promise.resolve()).then(() => this.#ctx.abandon(t.entry.id));
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
    for (const entryId of [...this.#reopens.keys()]) this.#forgetReopen(entryId);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  /** Stops following a run now (a whole file sent in segments that goes whole instead); its journal stays as it is. */
  stop(entryId: string): void {
    this.#followers.get(entryId)?.controller.abort(new ArteriaError('GATEWAY_NOT_RUNNING', 'the run is sent whole instead'));
  }

  /** New frames (a frame source) or an explicit end: look at the run now. */
  wake(entryId: string): void {
    this.#followers.get(entryId)?.wake();
  }

  /** A frame source's frames up to `frames` are durable: they may be cut now. */
  framesDurable(entryId: string, frames: number): void {
    this.#durable.set(entryId, frames);
    this.wake(entryId);
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
   * lost): the run-open and every segment are announced again, then its end if it was
   * built. At once, and at most once per answer: answers that come while the run-open is
   * still to be announced again (those to the steps sent before it) are covered by that
   * re-open. A re-open answered RUN_NOT_OPEN again within a resend interval is repeated
   * after REOPEN_BACKOFF_MS, doubling up to the resend interval, so a platform that keeps
   * refusing the run-open is not asked again as fast as it answers.
   */
  runNotOpen(requestId: string): void {
    const { outbox, config } = this.#ctx;
    const entry = outbox.findByRequestId(requestId);
    if (entry?.kind !== 'segmented' || !LIVE.has(entry.state)) return;
    if (outbox.segments.get(entry.id)?.openAnnouncedAt === undefined) return; // the run-open goes (again) next: it answers this
    const reopen = this.#reopens.get(entry.id) ?? { lastAt: 0, streak: 0, timer: undefined };
    this.#reopens.set(entry.id, reopen);
    if (reopen.timer !== undefined) return; // a re-open is due: it answers this too
    const now = epochNow();
    reopen.streak = reopen.lastAt > 0 && now - reopen.lastAt < config.resendIntervalMs ? reopen.streak + 1 : 0;
    if (reopen.streak === 0) return this.#reopen(entry.id, reopen);
    const delay = Math.min(config.resendIntervalMs, REOPEN_BACKOFF_MS * 2 ** (reopen.streak - 1));
    reopen.timer = setTimeout(() => {
      reopen.timer = undefined;
      this.#reopen(entry.id, reopen);
    }, delay);
  }

  #reopen(entryId: string, reopen: Reopen): void {
    const { outbox, logger } = this.#ctx;
    const entry = outbox.get(entryId);
    if (entry === undefined || !LIVE.has(entry.state) || this.#ctx.lifetime.aborted) return;
    reopen.lastAt = epochNow();
    logger.warn('the platform holds no open run for a segmented run; announcing it again', { entryId, requestId: entry.requestId, attempt: reopen.streak + 1 });
    outbox.segments.forgetAnnouncements(entryId);
    if (entry.state === 'pending') this.wake(entryId);
    else this.#follow(entry);
  }

  #forgetReopen(entryId: string): void {
    clearTimeout(this.#reopens.get(entryId)?.timer);
    this.#reopens.delete(entryId);
  }

  #follow(entry: OutboxEntry): void {
    if (this.#followers.has(entry.id) || this.#ctx.lifetime.aborted) return;
    if (this.#ctx.outbox.segments.get(entry.id)?.fallbackAt !== undefined) return; // to be sent whole (whole-file-runs.ts)
    const controller = new AbortController();
    const stop = (): void => controller.abort(this.#ctx.lifetime.reason);
    this.#ctx.lifetime.addEventListener('abort', stop, { once: true });
    const run = async (): Promise<void> => {
      const follower = new SegmentFollower({ ...this.#ctx, durableFrames: (id) => this.#durable.get(id) }, entry, controller.signal);
      handle.wake = () => follower.wake();
      await follower.run();
    };
    const handle: Follower = { controller, wake: () => undefined, done: Promise.resolve() };
    this.#followers.set(entry.id, handle);
    handle.done = run()
      .catch((err: unknown) => this.#failed(entry, err, controller.signal))
      .finally(() => {
        this.#ctx.lifetime.removeEventListener('abort', stop);
        this.#followers.delete(entry.id);
      });
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
