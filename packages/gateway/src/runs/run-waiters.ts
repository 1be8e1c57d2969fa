import { ArteriaError, epochNow, isErrorCode } from '@arteria/protocol';
import type { Outbox, OutboxEntry, OutboxResult } from '../outbox/outbox.js';
import { Waiters } from './waiters.js';

export interface RunWaitersContext {
  outbox: Outbox;
  resultTimeoutMs: number;
  /** Aborts when the gateway closes: a caller that stops waiting then no longer withdraws its run. */
  lifetime: AbortSignal;
}

/**
 * The callers of send() waiting for their runs, following the outbox: `published` starts
 * each caller's result deadline, `done` resolves them, `failed` rejects them. A caller that
 * gives up (its signal aborts) and was the last to wait withdraws the run (→ `cancelled`).
 */
export class RunWaiters {
  readonly #ctx: RunWaitersContext;
  readonly #waiters = new Waiters<OutboxResult>();

  constructor(context: RunWaitersContext) {
    this.#ctx = context;
    context.outbox.subscribe((t) => {
      if (t.to === 'published') this.#startDeadline(t.entry);
      else if (t.to === 'done') this.#waiters.resolve(t.entry.id, t.result);
      else if (t.to === 'failed') this.#waiters.reject(t.entry.id, t.error);
    });
  }

  /** Waits for the entry's result; a run already published (one this send joined) starts its deadline at once. */
  wait(entry: OutboxEntry, signal: AbortSignal | undefined): Promise<OutboxResult> {
    const { outbox, lifetime } = this.#ctx;
    // Answered, or failed, before this caller could wait (joined as it ended, or found answered): no transition is left to see.
    const current = outbox.get(entry.id);
    const answered = current?.state === 'done' ? outbox.resultOf(entry.id) : undefined;
    if (answered !== undefined) return Promise.resolve(answered);
    if (current?.state === 'failed') return Promise.reject(storedError(current.lastError));
    const result = this.#waiters.wait(entry.id, signal, (reason) => {
      if (!lifetime.aborted) outbox.cancel(entry.id, reason, epochNow());
    });
    if (entry.firstPublishedAt !== undefined) this.#startDeadline(entry);
    return result;
  }

  rejectAll(err: unknown): void {
    this.#waiters.rejectAll(err);
  }

  #startDeadline(entry: OutboxEntry): void {
    const { resultTimeoutMs } = this.#ctx;
    this.#waiters.startDeadline(entry.id, resultTimeoutMs, () => {
      const requestId = entry.requestId ?? this.#ctx.outbox.get(entry.id)?.requestId ?? entry.id;
      return new ArteriaError('RESULT_TIMEOUT', `no result for request ${requestId} within ${resultTimeoutMs} ms of its first publish; it stays in the outbox and is resent`);
    });
  }
}

/** A failed entry's error, as `fail` stored it (`CODE: message`). */
function storedError(lastError: string | undefined): ArteriaError {
  const match = /^([A-Z_]+): ([\s\S]*)$/.exec(lastError ?? '');
  const code = match?.[1];
  return code !== undefined && isErrorCode(code) ? new ArteriaError(code, match?.[2] ?? '') : new ArteriaError('INTERNAL', lastError ?? 'the run failed');
}
