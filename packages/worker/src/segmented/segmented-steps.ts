import { ArteriaError, epochNow, runDigest, type AlgorithmRef, type ResultV1 } from '@arteria/protocol';
import { type InputSource, type ParkedStep, type RequestLedger, type ResultPublisher, type RunCheckpoint, type RunCheckpointStore, type TaskV1 } from '@arteria/ports';
import { LiveStateLost, type IncrementalState, type LiveStateRef, type SegmentFold, type SegmentFolded } from './incremental-runner.js';
import { SegmentReads } from './segment-reads.js';

/**
 * Runs a pinned version's incremental contract, isolated (IncrementalRunner behind the
 * registry). `run` names the run in the thread that keeps its state live between steps.
 */
export interface IncrementalExecutor {
  open(algorithm: AlgorithmRef, run: string, header: Uint8Array, requireDeidentified: boolean): Promise<{ state: Uint8Array; live: LiveStateRef | undefined }>;
  segment(algorithm: AlgorithmRef, run: string, step: SegmentFold): Promise<SegmentFolded>;
  checkpoint(algorithm: AlgorithmRef, live: LiveStateRef): Promise<Uint8Array>;
  finish(algorithm: AlgorithmRef, run: string, step: { from: IncrementalState; header: Uint8Array; frames: number }): Promise<unknown>;
  /** Forgets the run's live state; never throws. */
  release(algorithm: AlgorithmRef, run: string): void;
}

export interface SegmentedStepsDeps {
  checkpoints: RunCheckpointStore;
  /** Read only when a step finds no checkpoint of its run: was the run answered meanwhile? */
  ledger: Pick<RequestLedger, 'get'>;
  incremental: IncrementalExecutor;
  inputs: InputSource;
  results: ResultPublisher;
  maxInputBytes: number;
  /** Longest a run's folds stay unwritten (default 2 s): a checkpoint is written at most this often, unless a fold brings a partial event. */
  checkpointEveryMs?: number;
}

/** Longest a run's folds stay unwritten, by default. */
const CHECKPOINT_EVERY_MS = 2_000;
/** Runs kept in hand between their steps, at most (the oldest goes first). */
const MAX_HANDS = 64;

/**
 * What a step came to: nothing more to do, the run's final result to record and deliver,
 * or nothing at all because the run was answered already (a late step: dropped, nothing kept).
 */
export type StepOutcome = { kind: 'settled' } | { kind: 'final'; result: ResultV1 } | { kind: 'answered' };

/**
 * A run's checkpoint as a drain carries it: the stored fields, and the algorithm's state
 * as checkpoint bytes (as read or written), live in the thread, or both. At least one.
 */
interface Folding extends Omit<RunCheckpoint, 'state'> {
  state: Uint8Array | undefined;
  live: LiveStateRef | undefined;
}

/**
 * A run in hand between its steps: where its last drain left it, its state live in the
 * thread, so its next step here starts from that without reading the store.
 */
interface Hand {
  known: Folding;
  /** When `known` is ahead of the stored checkpoint: the segments and events the stored one has. */
  behind: Written | undefined;
  writtenAt: number;
  /** Writes the checkpoint of a run left `behind` once its time is up (no further step came). */
  timer: NodeJS.Timeout | undefined;
}

interface Written {
  next: number;
  events: number;
}

/** Names a run in its version's thread: tenant and request. */
const runOf = (task: TaskV1): string => `${task.request.tenant}\0${task.request.id}`;

/** The stored form of a folded checkpoint. */
const storedOf = (folded: Folding, state: Uint8Array): Omit<RunCheckpoint, 'published'> => ({
  requestId: folded.requestId,
  next: folded.next,
  frames: folded.frames,
  headerSha256: folded.headerSha256,
  segmentSha256s: folded.segmentSha256s,
  algorithm: folded.algorithm,
  events: folded.events,
  state,
});

/**
 * A segmented run's steps, as the worker leases them. Steps may arrive in any order and
 * more than once; the run's checkpoint (RunCheckpointStore) decides. A step the run is
 * not ready for is parked in the store and its task acknowledged; whoever advances the run
 * to it (the worker of the step before, or the parker itself when it finds the run has
 * caught up meanwhile) takes it from there, so no step waits in the queue and none is lost.
 * Each segment is folded in once: the checkpoint is written compare-and-set, and partial
 * events are recorded in it before they are published (in order; the count published is
 * noted), so a replaced worker publishes what its predecessor had not.
 *
 * The algorithm's state stays live in its thread between steps (IncrementalRunner), and
 * the run stays in hand here: its next step in this process folds from the live state
 * without reading the store. Checkpoints are written compare-and-set at most every
 * `checkpointEveryMs` (and at once when a fold brings a partial event, which is published
 * only once recorded), so a write that fails names a checkpoint moved on by another
 * delivery: its copy stands, and this worker carries on from the store. Whatever was not
 * written is folded again from the stored checkpoint and the parked segments by whoever
 * takes the run next (a replaced worker, or this one when the live state is gone).
 */
export class SegmentedSteps {
  readonly #deps: SegmentedStepsDeps;
  readonly #checkpointEveryMs: number;
  /** Header bytes of the runs in hand, checked once (every step of a run reads its header). */
  readonly #headers = new Map<string, Uint8Array>();
  /** Runs in hand, by runOf. */
  readonly #hands = new Map<string, Hand>();
  /** The step of each run in hand here (settles when it is done, whatever its outcome), by runOf. */
  readonly #inHand = new Map<string, Promise<void>>();
  readonly #reads: SegmentReads;

  constructor(deps: SegmentedStepsDeps) {
    this.#deps = deps;
    this.#checkpointEveryMs = deps.checkpointEveryMs ?? CHECKPOINT_EVERY_MS;
    this.#reads = new SegmentReads(deps.inputs, deps.maxInputBytes);
  }

  /**
   * One step of a run after the other in this process: the drain of a step waiting behind
   * another's mostly finds its work done, where two at once would fold the same segments
   * and take the run's live state from each other. Workers of other processes still may
   * (the store decides between them). A segment step's segment is read while it waits.
   */
  handle(task: TaskV1, signal: AbortSignal): Promise<StepOutcome> {
    const readAhead = this.#reads.ahead(task);
    return this.#serial(runOf(task), () => this.#handle(task, signal)).finally(readAhead);
  }

  /**
   * Forgets a run whose result is recorded (by this step, another, or its abandonment):
   * its checkpoint and parked steps, and its live state in this process, after any step of
   * it in hand here, in the version the run was opened with as well as the task's.
   */
  forget(task: TaskV1): Promise<void> {
    return this.#serial(runOf(task), async () => {
      const run = runOf(task);
      const opened = this.#hands.get(run)?.known.algorithm ?? (await this.#deps.checkpoints.get(task.request.id))?.algorithm;
      this.#headers.delete(task.request.id);
      this.#release(task);
      if (opened !== undefined && opened.digest !== task.algorithm.digest) this.#deps.incremental.release(opened, run);
      await this.#deps.checkpoints.remove(task.request.id);
    });
  }

  /**
   * Whether a run has moved on since a look that found `since` segments folded: folded more
   * (here in hand, ahead of the store, or in the store, where another process may have
   * taken it on from a run in hand here), or a segment parked for its next fold (the
   * platform is behind, not the device). Undefined when the store holds nothing of the run
   * (forgotten).
   */
  progress(task: TaskV1, since: number): Promise<{ moved: boolean; next: number } | undefined> {
    return this.#serial(runOf(task), async () => {
      const stored = await this.#deps.checkpoints.get(task.request.id);
      if (stored === undefined) return undefined;
      const next = Math.max(stored.next, this.#hands.get(runOf(task))?.known.next ?? 0);
      const moved = next > since || (await this.#deps.checkpoints.parked(task.request.id, next)) !== undefined;
      return { moved, next };
    });
  }

  /** Runs held here between their steps (for tests and operators: an abandoned or finished run is not among them). */
  get runsInHand(): number {
    return this.#hands.size;
  }

  async #serial<T>(run: string, work: () => Promise<T>): Promise<T> {
    const before = this.#inHand.get(run);
    const mine = (async () => {
      // The step before answers for its own failure; this one carries on from the store either way.
      if (before !== undefined) await before;
      return work();
    })();
    const done = mine.then(
      () => undefined,
      () => undefined,
    );
    this.#inHand.set(run, done);
    try {
      return await mine;
    } finally {
      if (this.#inHand.get(run) === done) this.#inHand.delete(run);
    }
  }

  async #handle(task: TaskV1, signal: AbortSignal): Promise<StepOutcome> {
    const step = task.segmented;
    if (step === undefined) throw new ArteriaError('INTERNAL', 'not a step of a segmented run');
    const { checkpoints } = this.#deps;
    const id = task.request.id;
    try {
      if (step.phase === 'abandon' || step.phase === 'expire') throw new ArteriaError('INTERNAL', `run ${id}'s ${step.phase} step reached the run's steps; its worker handles it`);
      if (step.phase === 'open') {
        if (!this.#hands.has(runOf(task)) && (await checkpoints.get(id)) === undefined) {
          await this.#open(task);
          if (await this.#answered(task)) return { kind: 'answered' };
        }
      } else {
        await checkpoints.park(id, step);
      }
      const drained = await this.#drain(task, signal);
      if (step.phase !== 'open' && (await this.#late(task, step, drained))) return { kind: 'answered' };
      await this.#flush(task, drained.last);
      if (drained.outcome.kind === 'settled' && drained.last?.live !== undefined) this.#keep(task, { known: { ...drained.last, state: undefined }, behind: drained.behind, writtenAt: drained.writtenAt, timer: undefined });
      return drained.outcome;
    } catch (err) {
      // Failed, or the lease was lost: the live state may be ahead of anything written; the next step starts from the checkpoint.
      this.#release(task);
      throw err;
    }
  }

  /**
   * Whether a step left waiting belongs to a run answered and forgotten by another process
   * after this step's worker looked at the ledger: then nobody would ever take it. Costs a
   * ledger read only where the drain found no checkpoint, and a store read only for a step
   * left parked after a drain from the run in hand (which read nothing of the store).
   */
  async #late(task: TaskV1, step: ParkedStep, drained: { outcome: StepOutcome; last: Folding | undefined }): Promise<boolean> {
    if (drained.last === undefined) return this.#answered(task);
    const waiting = drained.outcome.kind === 'settled' && (step.phase === 'end' || step.index >= drained.last.next);
    return waiting && (await this.#deps.checkpoints.get(task.request.id)) === undefined && (await this.#answered(task));
  }

  /**
   * Whether the run's result is recorded; if so, whatever this step wrote of it (a parked
   * step, a checkpoint made by a late open) goes, as do its live state and header here.
   * Asked after the write, so a run answered meanwhile is seen: its worker records before
   * it removes the checkpoint, and a removal after this step's write took that write too.
   */
  async #answered(task: TaskV1): Promise<boolean> {
    const id = task.request.id;
    if ((await this.#deps.ledger.get(id))?.state !== 'completed') return false;
    this.#release(task);
    this.#headers.delete(id);
    await this.#deps.checkpoints.remove(id);
    return true;
  }

  /** Keeps a run in hand (its checkpoint bytes are not kept: the store has them); when it is behind the store, its write is due within checkpointEveryMs. */
  #keep(task: TaskV1, hand: Hand): void {
    const run = runOf(task);
    this.#drop(run);
    if (this.#hands.size >= MAX_HANDS) {
      const [oldest, kept] = this.#hands.entries().next().value ?? [];
      if (oldest !== undefined && kept !== undefined) {
        this.#drop(oldest);
        this.#deps.incremental.release(kept.known.algorithm, oldest);
      }
    }
    if (hand.behind !== undefined) {
      const dueMs = Math.max(0, hand.writtenAt + this.#checkpointEveryMs - Date.now());
      hand.timer = setTimeout(() => void this.#serial(run, () => this.#writeBehind(task)), dueMs);
      hand.timer.unref();
    }
    this.#hands.set(run, hand);
  }

  /** Takes a run out of hand (its drain puts it back). */
  #take(run: string): Hand | undefined {
    const hand = this.#hands.get(run);
    this.#drop(run);
    return hand;
  }

  #drop(run: string): void {
    const hand = this.#hands.get(run);
    if (hand === undefined) return;
    clearTimeout(hand.timer);
    this.#hands.delete(run);
  }

  #release(task: TaskV1): void {
    const run = runOf(task);
    this.#drop(run);
    this.#deps.incremental.release(task.algorithm, run);
  }

  /**
   * The checkpoint of a run left ahead of the store, when no step of it came within
   * checkpointEveryMs. Best effort: when it cannot be written (the live state is gone,
   * another delivery moved the checkpoint on, the store failed), the run is let go of, and
   * its next step, here or anywhere, carries on from the stored checkpoint and the parked
   * segments, folding again what was not written.
   */
  async #writeBehind(task: TaskV1): Promise<void> {
    const run = runOf(task);
    const hand = this.#take(run);
    if (hand?.behind === undefined) {
      if (hand !== undefined) this.#keep(task, hand);
      return;
    }
    const { known, behind } = hand;
    try {
      const state = await this.#deps.incremental.checkpoint(known.algorithm, known.live!);
      if (await this.#deps.checkpoints.advance(behind.next, storedOf(known, state))) {
        this.#keep(task, { known, behind: undefined, writtenAt: Date.now(), timer: undefined });
        return;
      }
    } catch {
      // Nothing is lost: the folds not written are folded again from the stored checkpoint (see above).
    }
    this.#release(task);
  }

  async #open(task: TaskV1): Promise<void> {
    const { request, algorithm } = task;
    const run = runOf(task);
    const header = await this.#header(task);
    const opened = await this.#deps.incremental.open(algorithm, run, header.bytes, task.identifiedInputs !== 'allow');
    const checkpoint = { requestId: request.id, next: 0, frames: 0, headerSha256: header.sha256, segmentSha256s: [], algorithm, events: [], state: opened.state };
    if (!(await this.#deps.checkpoints.create(checkpoint))) this.#release(task);
    else if (opened.live !== undefined) this.#keep(task, { known: { ...checkpoint, published: 0, state: undefined, live: opened.live }, behind: undefined, writtenAt: Date.now(), timer: undefined });
  }

  /**
   * Advances the run over every step it is ready for; the final result once its end is
   * reached. It starts from the run in hand (its live state, ahead of the store or not)
   * or else from the stored checkpoint. After each fold the checkpoint is written when the
   * fold brought a partial event, or when checkpointEveryMs has passed since the last
   * write; otherwise folds go on in memory: a state rewritten whole after every segment
   * (balloon-inflation's is 64 KiB a frame, 26 MB at 400 frames) made a worker fall behind
   * the acquisition. A fold that reaches the run's parked end goes straight to the result.
   * A run left ahead of the store stays in hand and its checkpoint is written when its
   * time is up (#writeBehind). A worker that dies meanwhile loses at most that much work:
   * the segments stay parked and its successor folds them again from the last checkpoint;
   * no event of the unwritten folds was published (events are published only once written).
   *
   * Unwritten folds exist only as the thread's live state: when it is lost (evicted by
   * other runs' states, the thread replaced), the drain starts again from the stored
   * checkpoint and from then on has each fold encoded with it, so it always gets through.
   */
  async #drain(task: TaskV1, signal: AbortSignal): Promise<{ outcome: StepOutcome; last: Folding | undefined; behind: Written | undefined; writtenAt: number }> {
    const { checkpoints, incremental } = this.#deps;
    const id = task.request.id;
    const run = runOf(task);
    const hand = this.#take(run);
    let known: Folding | undefined = hand?.known;
    /** Folds not yet written: the number of segments, and of events, the stored checkpoint has. */
    let behind = hand?.behind;
    let writtenAt = hand?.writtenAt ?? Date.now();
    let segment: ParkedStep | undefined;
    /** Each fold answers with its checkpoint bytes too (after a live state was lost). */
    let encodeEach = false;
    for (;;) {
      signal.throwIfAborted();
      const checkpoint = known ?? (await this.#stored(task));
      known = undefined;
      if (checkpoint === undefined) return { outcome: { kind: 'settled' }, last: undefined, behind: undefined, writtenAt }; // not opened yet: its open step drains
      try {
        segment ??= await checkpoints.parked(id, checkpoint.next);
        if (segment?.phase === 'segment') {
          const folded = await this.#fold(task, checkpoint, segment, encodeEach);
          behind ??= { next: checkpoint.next, events: checkpoint.events.length };
          segment = await checkpoints.parked(id, folded.next);
          const due = folded.events.length > behind.events || Date.now() - writtenAt >= this.#checkpointEveryMs;
          if (!due && segment?.phase === 'segment') {
            known = folded;
            continue;
          }
          if (!due || (segment === undefined && folded.events.length === behind.events)) {
            const end = await checkpoints.parked(id, 'end');
            // The end reached with nothing new to publish: the result follows, no checkpoint needed.
            if (end?.phase === 'end' && end.segments === folded.next) {
              known = folded;
              continue;
            }
            // Caught up, the write not due yet: the run stays in hand, ahead of the store.
            if (!due && folded.live !== undefined) return { outcome: { kind: 'settled' }, last: folded, behind, writtenAt };
          }
          const state = folded.state ?? (await incremental.checkpoint(folded.algorithm, folded.live!));
          // Compare-and-set: when another delivery folded these segments first, its copy stands.
          if (await checkpoints.advance(behind.next, storedOf(folded, state))) {
            known = { ...folded, state };
          } else {
            segment = undefined;
            this.#release(task);
          }
          behind = undefined;
          writtenAt = Date.now();
          continue;
        }
        segment = undefined;
        const end = await checkpoints.parked(id, 'end');
        if (end?.phase !== 'end' || end.segments > checkpoint.next) return { outcome: { kind: 'settled' }, last: checkpoint, behind, writtenAt };
        return { outcome: { kind: 'final', result: await this.#finish(task, checkpoint, end) }, last: checkpoint, behind, writtenAt };
      } catch (err) {
        if (!(err instanceof LiveStateLost)) throw err;
        // Folds not written are lost with it: again from the stored checkpoint.
        known = undefined;
        behind = undefined;
        segment = undefined;
        encodeEach = true;
      }
    }
  }

  /** The run's stored checkpoint (its state as bytes). */
  async #stored(task: TaskV1): Promise<Folding | undefined> {
    const stored = await this.#deps.checkpoints.get(task.request.id);
    return stored === undefined ? undefined : { ...stored, live: undefined };
  }

  /**
   * Runs a step on the checkpoint's state: live when the thread holds it, else from its
   * bytes (a stored checkpoint has them); LiveStateLost when it has only a live state that is gone.
   */
  async #onState<T>(checkpoint: Folding, step: (from: IncrementalState) => Promise<T>): Promise<T> {
    if (checkpoint.live !== undefined) {
      try {
        return await step({ live: checkpoint.live });
      } catch (err) {
        if (!(err instanceof LiveStateLost) || checkpoint.state === undefined) throw err;
      }
    }
    if (checkpoint.state === undefined) throw new LiveStateLost('the run has no state here: neither live nor checkpointed');
    return step({ bytes: checkpoint.state });
  }

  /** Folds one segment into the checkpoint, in memory (the drain writes it). */
  async #fold(task: TaskV1, checkpoint: Folding, segment: Extract<ParkedStep, { phase: 'segment' }>, encode: boolean): Promise<Folding> {
    if (segment.firstFrame !== checkpoint.frames) {
      throw new ArteriaError('SEGMENT_MISMATCH', `segment ${segment.index} starts at frame ${segment.firstFrame}, but the run continues at frame ${checkpoint.frames}`);
    }
    const header = await this.#header(task);
    let pixels: Uint8Array | undefined = await this.#reads.segment(task, segment);
    const step = { encode, header: header.bytes, firstFrame: segment.firstFrame, frameCount: segment.frameCount };
    const folded = await this.#onState(checkpoint, async (from) => {
      // Handed over to the thread, not copied (the read is this fold's own): a second try (from the checkpoint's bytes) reads the segment again.
      const bytes = pixels ?? (await this.#reads.read(task, segment.object, segment.frameCount)).bytes;
      pixels = undefined;
      return this.#deps.incremental.segment(checkpoint.algorithm, runOf(task), { from, ...step, pixels: bytes, handOver: true });
    });
    if (folded.pixels !== undefined) this.#reads.spare(folded.pixels);
    const frames = checkpoint.frames + segment.frameCount;
    const seen = new Set(checkpoint.events.map((e) => e.event.key));
    const events = [...checkpoint.events];
    for (const event of folded.events) {
      if (seen.has(event.key)) continue;
      seen.add(event.key);
      events.push({ seq: events.length, framesSeen: frames, event });
    }
    return { ...checkpoint, next: checkpoint.next + 1, frames, segmentSha256s: [...checkpoint.segmentSha256s, segment.object.sha256], events, state: folded.state, live: folded.live };
  }

  async #finish(task: TaskV1, checkpoint: Folding, end: Extract<ParkedStep, { phase: 'end' }>): Promise<ResultV1> {
    const { request } = task;
    if (end.segments !== checkpoint.next || end.frames !== checkpoint.frames) {
      throw new ArteriaError('SEGMENT_MISMATCH', `the run's end names ${end.segments} segments of ${end.frames} frames; the run has ${checkpoint.next} of ${checkpoint.frames}`);
    }
    if (end.digest !== runDigest(checkpoint.headerSha256, checkpoint.segmentSha256s)) {
      throw new ArteriaError('SEGMENT_MISMATCH', "the run's end carries a digest that does not match its header's and segments' SHA-256");
    }
    const header = await this.#header(task);
    const fetched = epochNow();
    const run = runOf(task);
    // The thread forgets the run's state as it finishes.
    const output = await this.#onState(checkpoint, (from) => this.#deps.incremental.finish(checkpoint.algorithm, run, { from, header: header.bytes, frames: checkpoint.frames }));
    const timings = { ...request.timings, ...(end.acquired === undefined ? {} : { acquired: end.acquired }), fetched, computed: epochNow() };
    return { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status: 'ok', algorithm: checkpoint.algorithm, output, timings };
  }

  /**
   * Publishes the partial events recorded and not yet published, in order, noting each.
   * `last`: the checkpoint the drain ended on; when it has nothing left to publish, there
   * is nothing to read (a run without events, such as balloon-inflation's, never reads it here).
   */
  async #flush(task: TaskV1, last: Folding | undefined): Promise<void> {
    const { checkpoints, results } = this.#deps;
    if (last !== undefined && last.published >= last.events.length) return;
    const checkpoint = await checkpoints.get(task.request.id);
    if (checkpoint === undefined) return;
    const { request } = task;
    if (results.publishPartial !== undefined) {
      for (const recorded of checkpoint.events.slice(checkpoint.published)) {
        await results.publishPartial({ v: 1, kind: 'partial', requestId: request.id, tenant: request.tenant, device: request.device, seq: recorded.seq, framesSeen: recorded.framesSeen, event: recorded.event, algorithm: checkpoint.algorithm, at: epochNow() });
        await checkpoints.markPublished(request.id, recorded.seq + 1);
      }
    }
    // The run in hand knows it now: its next steps do not read the store for it.
    if (last !== undefined) last.published = Math.max(last.published, checkpoint.events.length);
  }

  /** The run's header, read and checked at its first step in this worker. */
  async #header(task: TaskV1): Promise<{ bytes: Uint8Array; sha256: string }> {
    const ref = task.request.inputs[0];
    const kept = this.#headers.get(task.request.id);
    if (kept !== undefined && ref !== undefined) return { bytes: kept, sha256: ref.sha256 };
    const header = await this.#reads.read(task, ref);
    // Runs in hand are few; a run whose result went elsewhere is forgotten with the oldest.
    if (this.#headers.size >= 64) this.#headers.delete(this.#headers.keys().next().value ?? '');
    this.#headers.set(task.request.id, header.bytes);
    return header;
  }
}
