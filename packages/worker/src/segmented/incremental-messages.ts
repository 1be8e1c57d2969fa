import { isThreadReply, type CommonThreadReply, type ThreadConfig } from '../algorithms/sandbox-messages.js';

/** How many runs' states an incremental thread keeps live between steps, and for how long. */
export interface LiveStateBudget {
  /** Total size of the live states (typed arrays' bytes, strings, numbers: an estimate of the heap they hold). */
  maxBytes: number;
  maxRuns: number;
  /** A state not used for this long is dropped (its run went to another worker, or stalled). */
  idleMs: number;
}

export interface IncrementalThreadConfig extends ThreadConfig {
  live: LiveStateBudget;
}

/**
 * What the host and an incremental thread say to each other (segmented runs). A state is
 * named either by its checkpoint bytes (encodeState: what the store holds, what any
 * worker can start from) or, when the thread kept it live after a step, by its run and
 * generation: `gen` is given by the host for each state a step leaves and names that state
 * only (a step that mutates the state gives it a new one), so a stale name is refused
 * rather than taken for another state of the run.
 */
export type StateSource = { bytes: ArrayBuffer } | { gen: number };

export type IncrementalRequest =
  | { type: 'open'; id: number; run: string; gen: number; header: ArrayBuffer; requireDeidentified: boolean }
  /** `encode`: answer with the new state's checkpoint too (not only when the thread does not keep it). */
  | { type: 'segment'; id: number; run: string; gen: number; from: StateSource; encode: boolean; header: ArrayBuffer; pixels: ArrayBuffer; firstFrame: number; frameCount: number }
  /** The checkpoint of the live state `gen` of the run. */
  | { type: 'encode'; id: number; run: string; gen: number }
  | { type: 'finish'; id: number; run: string; from: StateSource; header: ArrayBuffer; frames: number }
  /** Forget the run's live state (no answer). */
  | { type: 'drop'; run: string };

/** The thread's live states after a step, for the host's counters. */
export interface LiveReport {
  runs: number;
  bytes: number;
}

export type IncrementalReply =
  | CommonThreadReply
  /**
   * `kept`: the thread keeps the new state live under the request's gen; `state`: its
   * checkpoint, when asked or when not kept (over the thread's budget). `decoded`: the step
   * started from checkpoint bytes. `pixels`: a segment's pixel buffer given back after its
   * fold, when the algorithm only borrows its frames (IncrementalAlgorithm.borrowsFrames).
   */
  | { type: 'stepped'; id: number; kept: boolean; state: ArrayBuffer | undefined; decoded: boolean; eventsJson: string; live: LiveReport; pixels?: ArrayBuffer }
  | { type: 'encoded'; id: number; state: ArrayBuffer }
  | { type: 'finished'; id: number; decoded: boolean; outputJson: string; live: LiveReport };

/** A `failed` reply's code when a step names a live state the thread does not hold (evicted, dropped, a new thread). */
export const STATE_NOT_LIVE = 'STATE_NOT_LIVE';

const isLive = (value: unknown): boolean => typeof value === 'object' && value !== null && typeof (value as LiveReport).runs === 'number' && typeof (value as LiveReport).bytes === 'number';

/** Shape check of what arrives from a thread, which runs code the platform does not own. */
export function isIncrementalReply(value: unknown): value is IncrementalReply {
  return isThreadReply(value, (m) => {
    switch (m.type) {
      case 'stepped':
        return typeof m.id === 'number' && typeof m.kept === 'boolean' && (m.state === undefined || m.state instanceof ArrayBuffer) && (m.kept || m.state !== undefined) && typeof m.decoded === 'boolean' && typeof m.eventsJson === 'string' && isLive(m.live) && (m.pixels === undefined || m.pixels instanceof ArrayBuffer);
      case 'encoded':
        return typeof m.id === 'number' && m.state instanceof ArrayBuffer;
      case 'finished':
        return typeof m.id === 'number' && typeof m.decoded === 'boolean' && typeof m.outputJson === 'string' && isLive(m.live);
      default:
        return false;
    }
  });
}
