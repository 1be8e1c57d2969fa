import { ArteriaError, epochNow, runDigest, type AlgorithmRef, type InputRef, type PartialEventV1, type ResultV1, type SegmentRef } from '@arteria/protocol';
import { assertAcceptedSize, assertInputInScope, type InputSource, type ParkedStep, type ResultPublisher, type RunCheckpoint, type RunCheckpointStore, type TaskV1 } from '@arteria/ports';
import { LiveStateLost, type IncrementalState, type LiveStateRef } from './incremental-runner.js';

/**
 * Runs a pinned version's incremental contract, isolated (IncrementalRunner behind the
 * registry). `run` names the run in the thread that keeps its state live between steps.
 */
export interface IncrementalExecutor {
  open(algorithm: AlgorithmRef, run: string, header: Uint8Array, requireDeidentified: boolean): Promise<{ state: Uint8Array; live: LiveStateRef | undefined }>;
  segment(
    algorithm: AlgorithmRef,
    run: string,
    step: { from: IncrementalState; encode: boolean; header: Uint8Array; pixels: Uint8Array; firstFrame: number; frameCount: number },
  ): Promise<{ live: LiveStateRef | undefined; state: Uint8Array | undefined; events: PartialEventV1[] }>;
  checkpoint(algorithm: AlgorithmRef, live: LiveStateRef): Promise<Uint8Array>;
  finish(algorithm: AlgorithmRef, run: string, step: { from: IncrementalState; header: Uint8Array; frames: number }): Promise<unknown>;
  /** Forgets the run's live state; never throws. */
  release(algorithm: AlgorithmRef, run: string): void;
}

export interface SegmentedStepsDeps {
  checkpoints: RunCheckpointStore;
  incremental: IncrementalExecutor;
  inputs: InputSource;
  results: ResultPublisher;
  maxInputBytes: number;
}

/** Longest a worker behind the acquisition folds segments in memory before it writes the checkpoint. */
const CHECKPOINT_EVERY_MS = 2_000;

/** What a step came to: nothing more to do, or the run's final result to record and deliver. */
export type StepOutcome = { kind: 'settled' } | { kind: 'final'; result: ResultV1 };

/**
 * A run's checkpoint as a drain carries it: the stored fields, and the algorithm's state
 * as checkpoint bytes (as read or written), live in the thread, or both. At least one.
 */
interface Folding extends Omit<RunCheckpoint, 'state'> {
  state: Uint8Array | undefined;
  live: LiveStateRef | undefined;
}

/** The stored checkpoint of a run whose state this worker's thread holds live: its place in the run, and the state's ref. */
interface WrittenLive {
  next: number;
  /** SHA-256 of the last segment folded (the header's when none). */
  tip: string;
  live: LiveStateRef;
}

const tipOf = (checkpoint: Pick<RunCheckpoint, 'headerSha256' | 'segmentSha256s'>): string => checkpoint.segmentSha256s.at(-1) ?? checkpoint.headerSha256;

/** Names a run in its version's thread: tenant and request. */
const runOf = (task: TaskV1): string => `${task.request.tenant}\0${task.request.id}`;

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
 * The algorithm's state stays live in its thread between steps (IncrementalRunner): a
 * step of a run whose stored checkpoint this worker wrote from the live state (same place,
 * same last segment) folds from the live state; any other step (another worker wrote it,
 * a restart, the state evicted) folds from the checkpoint's bytes, as the stored state is
 * what every worker agrees on. The live state is encoded only when a checkpoint is written.
 */
export class SegmentedSteps {
  readonly #deps: SegmentedStepsDeps;
  /** Header bytes of the runs in hand, checked once (every step of a run reads its header). */
  readonly #headers = new Map<string, Uint8Array>();
  /** Runs whose stored checkpoint this worker wrote from a state its thread still holds live, by runOf. */
  readonly #written = new Map<string, WrittenLive>();
  /** The step of each run in hand here (settles when it is done, whatever its outcome), by runOf. */
  readonly #inHand = new Map<string, Promise<void>>();

  constructor(deps: SegmentedStepsDeps) {
    this.#deps = deps;
  }

  /**
   * One step of a run after the other in this process: the drain of a step waiting behind
   * another's mostly finds its work done, where two at once would fold the same segments
   * and take the run's live state from each other. Workers of other processes still may
   * (the store decides between them).
   */
  async handle(task: TaskV1, signal: AbortSignal): Promise<StepOutcome> {
    const run = runOf(task);
    const before = this.#inHand.get(run);
    const mine = (async () => {
      // The step before answers for its own failure; this one carries on from the store either way.
      if (before !== undefined) await before;
      return this.#handle(task, signal);
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
      if (step.phase === 'open') {
        if ((await checkpoints.get(id)) === undefined) await this.#open(task);
      } else {
        await checkpoints.park(id, step);
      }
      const { outcome, last } = await this.#drain(task, signal);
      await this.#flush(task, last);
      return outcome;
    } catch (err) {
      // Failed, or the lease was lost: the live state may be ahead of anything written; the next step starts from the checkpoint.
      this.#release(task);
      throw err;
    }
  }

  /** Forgets a run whose result is recorded. */
  async forget(task: TaskV1): Promise<void> {
    this.#headers.delete(task.request.id);
    this.#release(task);
    await this.#deps.checkpoints.remove(task.request.id);
  }

  #release(task: TaskV1): void {
    const run = runOf(task);
    this.#written.delete(run);
    this.#deps.incremental.release(task.algorithm, run);
  }

  /** Notes that the stored checkpoint `written` holds the live state `live` (or forgets what was noted, when not kept). */
  #noteWritten(run: string, written: Pick<RunCheckpoint, 'next' | 'headerSha256' | 'segmentSha256s'>, live: LiveStateRef | undefined): void {
    if (live === undefined) {
      this.#written.delete(run);
      return;
    }
    this.#written.delete(run);
    // Runs in hand are few; one whose result went elsewhere is forgotten with the oldest (its live state idles out of the thread).
    if (this.#written.size >= 64) this.#written.delete(this.#written.keys().next().value ?? '');
    this.#written.set(run, { next: written.next, tip: tipOf(written), live });
  }

  async #open(task: TaskV1): Promise<void> {
    const { request, algorithm } = task;
    const run = runOf(task);
    const header = await this.#header(task);
    const opened = await this.#deps.incremental.open(algorithm, run, header.bytes, task.identifiedInputs !== 'allow');
    const checkpoint = { requestId: request.id, next: 0, frames: 0, headerSha256: header.sha256, segmentSha256s: [], algorithm, events: [], state: opened.state };
    if (await this.#deps.checkpoints.create(checkpoint)) this.#noteWritten(run, checkpoint, opened.live);
    else this.#release(task);
  }

  /** The run's stored checkpoint, with the live state when this worker wrote it from one. */
  async #stored(task: TaskV1): Promise<Folding | undefined> {
    const stored = await this.#deps.checkpoints.get(task.request.id);
    if (stored === undefined) return undefined;
    const written = this.#written.get(runOf(task));
    const live = written !== undefined && written.next === stored.next && written.tip === tipOf(stored) ? written.live : undefined;
    return { ...stored, live };
  }

  /**
   * Advances the run over every step it is ready for; the final result once its end is
   * reached. A checkpoint this worker wrote is carried on from as written, not read back
   * (balloon-inflation's state is 64 KiB a frame); one another delivery wrote is read.
   * While further segments are already waiting (the worker is behind the acquisition),
   * folds go on in memory and the checkpoint is written once they are caught up with, or
   * every CHECKPOINT_EVERY_MS: a state rewritten whole after every segment made a worker
   * that fell behind fall further behind. When the fold reaches the run's end (parked)
   * with no new partial event, no checkpoint is written: the result follows. A worker that
   * dies meanwhile loses at most that much work: the segments stay parked and its
   * successor folds them again from the last checkpoint; no event of the unwritten folds
   * was published (events are published only once written).
   *
   * Unwritten folds exist only as the thread's live state: when it is lost (evicted by
   * other runs' states, the thread replaced), the drain starts again from the stored
   * checkpoint and from then on has each fold encoded with it, so it always gets through.
   */
  async #drain(task: TaskV1, signal: AbortSignal): Promise<{ outcome: StepOutcome; last: Folding | undefined }> {
    const { checkpoints, incremental } = this.#deps;
    const id = task.request.id;
    const run = runOf(task);
    let known: Folding | undefined;
    /** Folds not yet written: the number of segments, and of events, the stored checkpoint has. */
    let written: { next: number; events: number } | undefined;
    let writtenAt = Date.now();
    let segment: ParkedStep | undefined;
    /** Each fold answers with its checkpoint bytes too (after a live state was lost). */
    let encodeEach = false;
    for (;;) {
      signal.throwIfAborted();
      const checkpoint = known ?? (await this.#stored(task));
      known = undefined;
      if (checkpoint === undefined) return { outcome: { kind: 'settled' }, last: undefined }; // not opened yet: its open step drains
      try {
        segment ??= await checkpoints.parked(id, checkpoint.next);
        if (segment?.phase === 'segment') {
          const folded = await this.#fold(task, checkpoint, segment, encodeEach);
          written ??= { next: checkpoint.next, events: checkpoint.events.length };
          segment = await checkpoints.parked(id, folded.next);
          if (segment?.phase === 'segment' && Date.now() - writtenAt < CHECKPOINT_EVERY_MS) {
            known = folded;
            continue;
          }
          if (segment === undefined && folded.events.length === written.events) {
            const end = await checkpoints.parked(id, 'end');
            if (end?.phase === 'end' && end.segments === folded.next) {
              known = folded;
              continue;
            }
          }
          const state = folded.state ?? (await incremental.checkpoint(folded.algorithm, folded.live!));
          const stored = { requestId: id, next: folded.next, frames: folded.frames, headerSha256: folded.headerSha256, segmentSha256s: folded.segmentSha256s, algorithm: folded.algorithm, events: folded.events, state };
          // Compare-and-set: when another delivery folded these segments first, its copy stands.
          if (await checkpoints.advance(written.next, stored)) {
            known = { ...folded, state };
            this.#noteWritten(run, folded, folded.live);
          } else {
            segment = undefined;
            this.#release(task);
          }
          written = undefined;
          writtenAt = Date.now();
          continue;
        }
        segment = undefined;
        const end = await checkpoints.parked(id, 'end');
        if (end?.phase !== 'end' || end.segments > checkpoint.next) return { outcome: { kind: 'settled' }, last: checkpoint };
        return { outcome: { kind: 'final', result: await this.#finish(task, checkpoint, end) }, last: checkpoint };
      } catch (err) {
        if (!(err instanceof LiveStateLost)) throw err;
        // Folds not written are lost with it: again from the stored checkpoint.
        this.#written.delete(run);
        known = undefined;
        written = undefined;
        segment = undefined;
        encodeEach = true;
      }
    }
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
    const pixels = await this.#read(task, segment.object);
    const step = { encode, header: header.bytes, pixels: pixels.bytes, firstFrame: segment.firstFrame, frameCount: segment.frameCount };
    const folded = await this.#onState(checkpoint, (from) => this.#deps.incremental.segment(checkpoint.algorithm, runOf(task), { from, ...step }));
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
    this.#written.delete(run);
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
    if (checkpoint === undefined || checkpoint.published >= checkpoint.events.length) return;
    if (results.publishPartial === undefined) return;
    const { request } = task;
    for (const recorded of checkpoint.events.slice(checkpoint.published)) {
      await results.publishPartial({ v: 1, kind: 'partial', requestId: request.id, tenant: request.tenant, device: request.device, seq: recorded.seq, framesSeen: recorded.framesSeen, event: recorded.event, algorithm: checkpoint.algorithm, at: epochNow() });
      await checkpoints.markPublished(request.id, recorded.seq + 1);
    }
  }

  /** The run's header, read and checked at its first step in this worker. */
  async #header(task: TaskV1): Promise<{ bytes: Uint8Array; sha256: string }> {
    const ref = task.request.inputs[0];
    const kept = this.#headers.get(task.request.id);
    if (kept !== undefined && ref !== undefined) return { bytes: kept, sha256: ref.sha256 };
    const header = await this.#read(task, ref);
    // Runs in hand are few; a run whose result went elsewhere is forgotten with the oldest.
    if (this.#headers.size >= 64) this.#headers.delete(this.#headers.keys().next().value ?? '');
    this.#headers.set(task.request.id, header.bytes);
    return header;
  }

  /** An object of the run, whole and checked (size, SHA-256, the requester's prefix). */
  async #read(task: TaskV1, object: InputRef | SegmentRef | undefined): Promise<{ bytes: Uint8Array; sha256: string }> {
    if (object === undefined) throw new ArteriaError('INVALID_REQUEST', 'inputs: empty');
    assertInputInScope(object, task.request); // again here: a task does not prove where it came from
    // The source checks bytes, not content types: a segment is read like any input.
    const ref: InputRef = { uri: object.uri, size: object.size, sha256: object.sha256, contentType: 'application/dicom' };
    assertAcceptedSize(ref, this.#deps.maxInputBytes);
    const bytes = await this.#deps.inputs.fetch(ref, { maxBytes: this.#deps.maxInputBytes });
    return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), sha256: object.sha256 };
  }
}
