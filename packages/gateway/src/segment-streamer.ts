import { rm } from 'node:fs/promises';
import { ArteriaError, epochNow, toArteriaError, type PartialResultV1 } from '@arteria/protocol';
import type { OutboxEntry } from './outbox.js';
import { SegmentFollower, type SegmentFollowerContext } from './segment-follower.js';

export interface SegmentStreamerContext extends SegmentFollowerContext {
  /** Aborts when the gateway closes: every run stops where it is (its state is committed) and resumes on the next start. */
  lifetime: AbortSignal;
  /** A segmented run's entry ended (failed, withdrawn) and its follower stopped: abandon it on the platform if the outbox noted so. */
  abandon: (entryId: string) => void;
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
          const follower = this.#followers.get(t.entry.id);
          follower?.controller.abort(new ArteriaError('GATEWAY_NOT_RUNNING', `the run ended (${t.to})`));
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
    const run = async (): Promise<void> => {
      const follower = new SegmentFollower(this.#ctx, entry, controller.signal);
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
