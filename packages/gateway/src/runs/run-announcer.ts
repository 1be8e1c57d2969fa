import { rmSync } from 'node:fs';
import type { ReidentificationStore } from '@arteria/deid';
import type { TypedEmitter } from '../events.js';
import { errorFields, type GatewayLogger } from '../log.js';
import type { Outbox, OutboxEntry, OutboxTransition } from '../outbox/outbox.js';
import { RunTraces } from './run-traces.js';
import type { GatewayEvents } from '../types.js';
import type { UploadSweeper } from '../upload/upload-sweeper.js';

export interface RunAnnouncerContext {
  outbox: Outbox;
  events: TypedEmitter<GatewayEvents>;
  traces: RunTraces;
  logger: GatewayLogger;
  sweeper: UploadSweeper;
  /** Present when de-identification is on: results are announced with the original study. */
  reid: ReidentificationStore | undefined;
}

/**
 * What a run's transitions mean outside the outbox: the gateway's `entry`, `result` and
 * `error` events, the end of its span, its counters, and the clean-up of a finished run
 * (the spooled copy is removed before its result is announced; a run that ends without a
 * result has its multipart upload aborted).
 */
export class RunAnnouncer {
  readonly #ctx: RunAnnouncerContext;
  readonly counters = { sent: 0, done: 0, failed: 0 };

  constructor(context: RunAnnouncerContext) {
    this.#ctx = context;
    context.outbox.subscribe((t) => this.#follow(t));
  }

  #follow(t: OutboxTransition): void {
    const { events, traces, logger, sweeper } = this.#ctx;
    const entryId = t.entry.id;
    if (t.to === 'done' || t.to === 'failed' || t.to === 'cancelled') {
      if (t.entry.spooled) this.#removeSpooled(t.entry);
      if (t.to !== 'done') void sweeper.sweep(); // its multipart upload, if any
    }
    switch (t.to) {
      case 'pending':
        if (t.from === undefined) this.counters.sent += 1; // not again when a file sent in segments goes whole instead
        events.emit('entry', { entryId, state: 'pending' });
        return;
      case 'uploaded':
      case 'published':
        events.emit('entry', { entryId, state: t.to, ...(t.entry.requestId !== undefined && { requestId: t.entry.requestId }) });
        return;
      case 'done': {
        const { result } = t;
        this.counters.done += 1;
        traces.finished(entryId, { result, receivedAt: result.timings.received });
        events.emit('entry', { entryId, state: 'done', requestId: result.requestId });
        const original = this.#ctx.reid?.get(t.entry.instanceUid)?.original;
        events.emit('result', { entryId, sourcePath: t.entry.sourcePath, result, ...(original && { original }) });
        return;
      }
      case 'failed':
        this.counters.failed += 1;
        traces.finished(entryId, { error: t.error });
        logger.error('run cannot be sent; removed from the outbox', { entryId, ...RunTraces.traceId(t.entry), ...errorFields(t.error) });
        events.emit('entry', { entryId, state: 'failed' });
        events.emit('error', { entryId, error: t.error });
        return;
      case 'cancelled':
        traces.finished(entryId, { error: { code: 'CANCELLED', message: t.reason instanceof Error ? t.reason.message : String(t.reason) } });
        events.emit('entry', { entryId, state: 'cancelled' });
        return;
    }
  }

  /** Synchronous (one unlink) so that the copy is gone before the result is announced. */
  #removeSpooled(entry: OutboxEntry): void {
    try {
      rmSync(entry.sourcePath, { force: true });
    } catch (err) {
      this.#ctx.logger.warn('could not remove a spooled run', { entryId: entry.id, path: entry.sourcePath, ...errorFields(err) });
    }
  }
}
