import { ArteriaError } from '@arteria/protocol';
import type { EntryState, LiveState, OutboxEntry, OutboxResult } from './outbox-entry.js';

/**
 * The outbox's state machine: the states each state may move to. Everything the gateway
 * does with a run follows one of these edges, and each edge is committed before anyone
 * acts on it. `uploaded → done`: a result may overtake its request's PUBACK. `pending →
 * done`: only a segmented run, which the platform may end (refuse) while it still streams.
 * `uploaded | published → pending`: only a complete file sent in segments that the
 * platform cannot run so (NOT_INCREMENTAL), which becomes a whole-file run to upload.
 */
export const NEXT_STATES: Readonly<Record<EntryState, readonly EntryState[]>> = {
  pending: ['uploaded', 'done', 'failed', 'cancelled'],
  uploaded: ['published', 'done', 'failed', 'cancelled', 'pending'],
  published: ['done', 'failed', 'cancelled', 'pending'],
  done: [],
  failed: [],
  cancelled: [],
};

interface Change<From extends EntryState | undefined, To extends EntryState> {
  from: From;
  to: To;
  /** The entry as committed in its new state. */
  entry: OutboxEntry & { state: To };
  /** Epoch ms of the change. */
  at: number;
}

/** One committed state change of one entry, as the outbox's subscribers see it. */
export type OutboxTransition =
  | Change<undefined, 'pending'>
  /** A complete file sent in segments becomes a whole-file run (NOT_INCREMENTAL): `pending` again, kind `file`. */
  | (Change<LiveState, 'pending'> & { wholeFile: true })
  | Change<'pending', 'uploaded'>
  | Change<'uploaded', 'published'>
  | (Change<LiveState, 'done'> & { result: OutboxResult })
  | (Change<LiveState, 'failed'> & { error: ArteriaError })
  | (Change<LiveState, 'cancelled'> & { reason: unknown });

/** An entry was asked to move along an edge its state machine lacks: a bug, not a race. */
export class IllegalTransitionError extends ArteriaError {
  readonly entryId: string;
  readonly from: EntryState | undefined;
  readonly to: EntryState;

  constructor(entryId: string, from: EntryState | undefined, to: EntryState) {
    super('ILLEGAL_STATE', `outbox entry ${entryId} cannot move from ${from ?? 'nowhere (no such entry)'} to ${to}`);
    this.name = 'IllegalTransitionError';
    this.entryId = entryId;
    this.from = from;
    this.to = to;
  }
}

/** Throws IllegalTransitionError unless `from → to` is an edge of the machine. */
export function assertTransition(entryId: string, from: EntryState | undefined, to: EntryState): void {
  if (from === undefined || !NEXT_STATES[from].includes(to)) throw new IllegalTransitionError(entryId, from, to);
}

export type TransitionListener = (transition: OutboxTransition) => void;

/**
 * Delivers committed transitions to subscribers, in commit order and in the order they
 * subscribed. A transition made by a listener is delivered after the current one has
 * reached every listener. A listener that throws does not stop the others; its error
 * goes to `onListenerError`, or, without one, to the caller of the transition once all
 * listeners have run.
 */
export class TransitionStream {
  readonly #listeners = new Set<TransitionListener>();
  readonly #queue: OutboxTransition[] = [];
  readonly #onListenerError: ((err: unknown, transition: OutboxTransition) => void) | undefined;
  #delivering = false;

  constructor(onListenerError?: (err: unknown, transition: OutboxTransition) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: TransitionListener): () => void {
    const own = (transition: OutboxTransition): void => listener(transition);
    this.#listeners.add(own);
    return () => this.#listeners.delete(own);
  }

  emit(transition: OutboxTransition): void {
    this.#queue.push(transition);
    if (this.#delivering) return;
    this.#delivering = true;
    const failures: unknown[] = [];
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        for (const listener of [...this.#listeners]) {
          try {
            listener(next);
          } catch (err) {
            if (this.#onListenerError) this.#onListenerError(err, next);
            else failures.push(err);
          }
        }
      }
    } finally {
      this.#delivering = false;
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'outbox transition listeners failed');
  }
}
