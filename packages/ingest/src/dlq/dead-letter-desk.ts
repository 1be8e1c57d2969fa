import { ArteriaError, epochNow, toArteriaError, type AlgorithmRef, type ResultV1 } from '@arteria/protocol';
import { admit, type AlgorithmResolver } from '../admission.js';
import type { EntitlementPolicy } from '../entitlements.js';
import { decodeTask, encodeTask, type TaskV1, type RequestLedger, type DeadLetter, type WorkQueue } from '@arteria/ports';

/** A dead letter as an operator reads it: what was asked, by whom, why it stopped. */
export interface DeadLetterView {
  /** The queue's task id; in any pool but the first (cpu) prefixed with the pool: `gpu:17`. */
  taskId: string;
  /** The worker pool whose queue holds it (cpu, gpu). */
  pool: string;
  reason: string;
  deliveries: number;
  /** Epoch ms it was dead-lettered. */
  at: number;
  /** Epoch ms it was first queued. */
  enqueuedAt: number;
  /** Present when the task can be read (every task Arteria queued). */
  request?: { id: string; tenant: string; device: string; algorithm: string; instanceUid: string; inputs: { uri: string; size: number; sha256: string }[] };
  /** The version pinned at admission. */
  pinned?: AlgorithmRef;
  /** Why the task cannot be read, when it cannot. */
  unreadable?: string;
  /** The ledger's state for the request: a completed one is never computed again. */
  ledger?: { state: 'accepted' } | { state: 'completed'; status: ResultV1['status']; errorCode?: string } | { state: 'tampered'; message: string };
}

export type ReplayOutcome =
  /** Queued again as `newTaskId` through admission, with the version admission pins now. */
  | { taskId: string; requestId: string; status: 'replayed'; newTaskId: string; algorithm: AlgorithmRef }
  /** The ledger holds a result the device was sent: nothing runs again; the letter is cleared. */
  | { taskId: string; requestId: string; status: 'already-completed'; result: ResultV1['status'] };

export interface DeadLetterDeskDeps {
  /** Every worker pool's queue, by pool name: letters are listed across them and a replay goes back to its own pool. */
  queues: ReadonlyMap<string, WorkQueue>;
  ledger: RequestLedger;
  /** What a replay's admission consults; without it the desk only lists and shows. */
  admission?: {
    algorithms: AlgorithmResolver;
    /** Bucket the devices upload into (every input must be in its device's prefix). */
    bucket: string;
    entitlements?: EntitlementPolicy | undefined;
  };
  now?: () => number;
}

/** A letter and the pool queue that holds it. */
interface Found {
  letter: DeadLetter;
  pool: string;
  queue: WorkQueue;
}

/** Most letters `replayAll` looks at in one go. */
const REPLAY_ALL_LIMIT = 10_000;

/**
 * Operator tooling for the dead-letter store of either queue engine: list, show, replay.
 *
 * A replay goes through admission again (entitlements, registry: the version pinned now,
 * so a fixed release answers it; a deadline that passed refuses it) and queues the task
 * under a dedupe id of its own (`{requestId}/replay/{taskId}`), then removes the letter.
 * The effect stays exactly-once: a request whose result is in the ledger (the device was
 * sent it, for example the DEAD_LETTERED failure given after the last retry) is not run
 * again, only cleared; a replay repeated after a crash between queueing and removing
 * queues nothing new (same dedupe id); and a worker never computes a request whose result
 * is recorded. A refused replay keeps the letter.
 */
export class DeadLetterDesk {
  readonly #deps: DeadLetterDeskDeps;
  readonly #now: () => number;

  constructor(deps: DeadLetterDeskDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? epochNow;
  }

  /** Newest first, across every pool. */
  async list(limit: number): Promise<DeadLetterView[]> {
    const letters = (await this.#letters(limit)).sort((a, b) => b.letter.at - a.letter.at).slice(0, limit);
    return Promise.all(letters.map((found) => this.#view(found)));
  }

  /** Throws DEAD_LETTER_NOT_FOUND. */
  async show(taskId: string): Promise<DeadLetterView> {
    return this.#view(await this.#find(taskId));
  }

  async replay(taskId: string): Promise<ReplayOutcome> {
    const { ledger } = this.#deps;
    const { letter, pool, queue } = await this.#find(taskId);
    const task = readTask(letter);
    if (typeof task === 'string') throw new ArteriaError('DEAD_LETTER_UNREADABLE', `dead letter ${taskId} cannot be replayed: ${task}`);
    const { request } = task;
    const entry = await ledger.get(request.id);
    if (entry?.state === 'completed') {
      await queue.removeDeadLetter(letter.taskId);
      return { taskId, requestId: request.id, status: 'already-completed', result: entry.status };
    }
    const { admission } = this.#deps;
    if (admission === undefined) throw new ArteriaError('INTERNAL', 'this dead-letter desk was opened without admission rules: it can list and show, not replay');
    // Replayed into the queue it was dead-lettered from: the same pool.
    const algorithm = admit({ ...admission, now: this.#now }, request, request).ref;
    const enqueued = this.#now();
    await ledger.recordAccepted({ requestId: request.id, tenant: request.tenant, device: request.device, algorithm: request.algorithm, acceptedAt: enqueued, request });
    const payload = encodeTask({ v: 1, request: { ...request, timings: { ...request.timings, enqueued } }, algorithm });
    const dedupeId = `${request.id}/replay/${taskId}`;
    // Noted before it is queued: while the replay is pending, ingest must not answer a
    // resend from the ledger too (a result recorded meanwhile, by the replay or late by
    // the task it replays, is published by the replay's worker).
    await ledger.noteReplay(request.id, dedupeId);
    const { taskId: queued } = await queue.enqueue(payload, { dedupeId });
    await queue.removeDeadLetter(letter.taskId);
    return { taskId, requestId: request.id, status: 'replayed', newTaskId: this.#qualified(pool, queued), algorithm };
  }

  /**
   * Replays every letter (oldest first, as they failed); a refused one is reported and
   * kept, and the others go on.
   */
  async replayAll(): Promise<{ outcomes: ReplayOutcome[]; refused: { taskId: string; code: string; message: string }[] }> {
    const letters = (await this.#letters(REPLAY_ALL_LIMIT)).sort((a, b) => a.letter.at - b.letter.at);
    const outcomes: ReplayOutcome[] = [];
    const refused: { taskId: string; code: string; message: string }[] = [];
    for (const { letter, pool } of letters) {
      const taskId = this.#qualified(pool, letter.taskId);
      try {
        outcomes.push(await this.replay(taskId));
      } catch (err) {
        const error = toArteriaError(err);
        if (error.retryable) throw error; // the queue or ledger is down: stop, nothing is half done
        refused.push({ taskId, code: error.code, message: error.message });
      }
    }
    return { outcomes, refused };
  }

  #qualified(pool: string, taskId: string): string {
    const [first] = this.#deps.queues.keys();
    return pool === first ? taskId : `${pool}:${taskId}`;
  }

  /** Up to `limit` newest letters of each pool. */
  async #letters(limit: number): Promise<Found[]> {
    const perPool = await Promise.all([...this.#deps.queues].map(async ([pool, queue]) => (await queue.deadLetters(limit)).map((letter): Found => ({ letter, pool, queue }))));
    return perPool.flat();
  }

  /** The pool's queue and the queue's own id for a task id as the desk shows it. */
  async #find(taskId: string): Promise<Found> {
    const [first] = this.#deps.queues.keys();
    const colon = taskId.indexOf(':');
    const prefix = colon > 0 ? taskId.slice(0, colon) : undefined;
    const pool = prefix !== undefined && prefix !== first && this.#deps.queues.has(prefix) ? prefix : first;
    const queue = pool === undefined ? undefined : this.#deps.queues.get(pool);
    const letter = await queue?.findDeadLetter(pool === first ? taskId : taskId.slice(colon + 1));
    if (pool !== undefined && queue !== undefined && letter !== undefined) return { letter, pool, queue };
    throw new ArteriaError('DEAD_LETTER_NOT_FOUND', `no dead letter with task id ${JSON.stringify(taskId)} (see arteria dlq list)`);
  }

  async #view({ letter, pool }: Found): Promise<DeadLetterView> {
    const { taskId, reason, deliveries, at, enqueuedAt } = letter;
    const view: DeadLetterView = { taskId: this.#qualified(pool, taskId), pool, reason, deliveries, at, enqueuedAt };
    const task = readTask(letter);
    if (typeof task === 'string') return { ...view, unreadable: task };
    const { id, tenant, device, algorithm, instanceUid, inputs } = task.request;
    const ledger = await this.#ledgerState(id);
    return {
      ...view,
      request: { id, tenant, device, algorithm, instanceUid, inputs: inputs.map(({ uri, size, sha256 }) => ({ uri, size, sha256 })) },
      pinned: task.algorithm,
      ...(ledger ? { ledger } : {}),
    };
  }

  /** A record that fails its chain check is shown as such (replay refuses it with LEDGER_TAMPERED). */
  async #ledgerState(requestId: string): Promise<DeadLetterView['ledger']> {
    try {
      const entry = await this.#deps.ledger.get(requestId);
      if (entry === undefined) return undefined;
      if (entry.state === 'accepted') return { state: 'accepted' };
      return { state: 'completed', status: entry.status, ...(entry.result.error ? { errorCode: entry.result.error.code } : {}) };
    } catch (err) {
      const error = toArteriaError(err);
      if (error.code !== 'LEDGER_TAMPERED') throw error;
      return { state: 'tampered', message: error.message };
    }
  }
}

/** The task, or why it cannot be read. */
function readTask(letter: DeadLetter): TaskV1 | string {
  try {
    return decodeTask(letter.payload);
  } catch (err) {
    return `not a task this platform can read (${(err as Error).message.slice(0, 200)})`;
  }
}
