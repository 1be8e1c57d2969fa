import { ArteriaError, epochNow, runDigest, type AlgorithmRef, type InputRef, type PartialEventV1, type ResultV1, type SegmentRef } from '@arteria/protocol';
import { assertAcceptedSize, assertInputInScope, type InputSource, type ParkedStep, type ResultPublisher, type RunCheckpoint, type RunCheckpointStore, type TaskV1 } from '@arteria/ports';

/** Runs a pinned version's incremental contract, isolated (IncrementalRunner behind the registry). */
export interface IncrementalExecutor {
  open(algorithm: AlgorithmRef, header: Uint8Array, requireDeidentified: boolean): Promise<Uint8Array>;
  segment(algorithm: AlgorithmRef, step: { header: Uint8Array; state: Uint8Array; pixels: Uint8Array; firstFrame: number; frameCount: number }): Promise<{ state: Uint8Array; events: PartialEventV1[] }>;
  finish(algorithm: AlgorithmRef, step: { header: Uint8Array; state: Uint8Array; frames: number }): Promise<unknown>;
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
 * A segmented run's steps, as the worker leases them. Steps may arrive in any order and
 * more than once; the run's checkpoint (RunCheckpointStore) decides. A step the run is
 * not ready for is parked in the store and its task acknowledged; whoever advances the run
 * to it (the worker of the step before, or the parker itself when it finds the run has
 * caught up meanwhile) takes it from there, so no step waits in the queue and none is lost.
 * Each segment is folded in once: the checkpoint is written compare-and-set, and partial
 * events are recorded in it before they are published (in order; the count published is
 * noted), so a replaced worker publishes what its predecessor had not.
 */
export class SegmentedSteps {
  readonly #deps: SegmentedStepsDeps;
  /** Header bytes of the runs in hand, checked once (every step of a run reads its header). */
  readonly #headers = new Map<string, Uint8Array>();

  constructor(deps: SegmentedStepsDeps) {
    this.#deps = deps;
  }

  async handle(task: TaskV1, signal: AbortSignal): Promise<StepOutcome> {
    const step = task.segmented;
    if (step === undefined) throw new ArteriaError('INTERNAL', 'not a step of a segmented run');
    const { checkpoints } = this.#deps;
    const id = task.request.id;
    if (step.phase === 'open') {
      if ((await checkpoints.get(id)) === undefined) await this.#open(task);
    } else {
      await checkpoints.park(id, step);
    }
    const { outcome, last } = await this.#drain(task, signal);
    await this.#flush(task, last);
    return outcome;
  }

  /** Forgets a run whose result is recorded. */
  async forget(requestId: string): Promise<void> {
    this.#headers.delete(requestId);
    await this.#deps.checkpoints.remove(requestId);
  }

  async #open(task: TaskV1): Promise<void> {
    const { request, algorithm } = task;
    const header = await this.#header(task);
    const state = await this.#deps.incremental.open(algorithm, header.bytes, task.identifiedInputs !== 'allow');
    await this.#deps.checkpoints.create({ requestId: request.id, next: 0, frames: 0, headerSha256: header.sha256, segmentSha256s: [], algorithm, events: [], state });
  }

  /**
   * Advances the run over every step it is ready for; the final result once its end is
   * reached. A checkpoint this worker wrote is carried on from as written, not read back
   * (balloon-inflation's state is 64 KiB a frame); one another delivery wrote is read.
   * While further segments are already waiting (the worker is behind the acquisition),
   * folds go on in memory and the checkpoint is written once they are caught up with, or
   * every CHECKPOINT_EVERY_MS: a state rewritten whole after every segment made a worker
   * that fell behind fall further behind. A worker that dies meanwhile loses at most that
   * much work: the segments stay parked and its successor folds them again from the last
   * checkpoint; no event of the unwritten folds was published (events are published only
   * once written).
   */
  async #drain(task: TaskV1, signal: AbortSignal): Promise<{ outcome: StepOutcome; last: RunCheckpoint | undefined }> {
    const { checkpoints } = this.#deps;
    const id = task.request.id;
    let known: RunCheckpoint | undefined;
    /** Folds not yet written: the number of segments the stored checkpoint has. */
    let writtenNext: number | undefined;
    let writtenAt = Date.now();
    let segment: ParkedStep | undefined;
    for (;;) {
      signal.throwIfAborted();
      const checkpoint = known ?? (await checkpoints.get(id));
      known = undefined;
      if (checkpoint === undefined) return { outcome: { kind: 'settled' }, last: undefined }; // not opened yet: its open step drains
      segment ??= await checkpoints.parked(id, checkpoint.next);
      if (segment?.phase === 'segment') {
        const folded = await this.#fold(task, checkpoint, segment);
        writtenNext ??= checkpoint.next;
        segment = await checkpoints.parked(id, folded.next);
        if (segment?.phase === 'segment' && Date.now() - writtenAt < CHECKPOINT_EVERY_MS) {
          known = folded;
          continue;
        }
        // Compare-and-set: when another delivery folded these segments first, its copy stands.
        known = (await checkpoints.advance(writtenNext, folded)) ? folded : undefined;
        if (known === undefined) segment = undefined;
        writtenNext = undefined;
        writtenAt = Date.now();
        continue;
      }
      segment = undefined;
      const end = await checkpoints.parked(id, 'end');
      if (end?.phase !== 'end' || end.segments > checkpoint.next) return { outcome: { kind: 'settled' }, last: checkpoint };
      return { outcome: { kind: 'final', result: await this.#finish(task, checkpoint, end) }, last: checkpoint };
    }
  }

  /** Folds one segment into the checkpoint, in memory (the drain writes it). */
  async #fold(task: TaskV1, checkpoint: RunCheckpoint, segment: Extract<ParkedStep, { phase: 'segment' }>): Promise<RunCheckpoint> {
    if (segment.firstFrame !== checkpoint.frames) {
      throw new ArteriaError('SEGMENT_MISMATCH', `segment ${segment.index} starts at frame ${segment.firstFrame}, but the run continues at frame ${checkpoint.frames}`);
    }
    const header = await this.#header(task);
    const pixels = await this.#read(task, segment.object);
    const folded = await this.#deps.incremental.segment(checkpoint.algorithm, { header: header.bytes, state: checkpoint.state, pixels: pixels.bytes, firstFrame: segment.firstFrame, frameCount: segment.frameCount });
    const frames = checkpoint.frames + segment.frameCount;
    const seen = new Set(checkpoint.events.map((e) => e.event.key));
    const events = [...checkpoint.events];
    for (const event of folded.events) {
      if (seen.has(event.key)) continue;
      seen.add(event.key);
      events.push({ seq: events.length, framesSeen: frames, event });
    }
    return { ...checkpoint, next: checkpoint.next + 1, frames, segmentSha256s: [...checkpoint.segmentSha256s, segment.object.sha256], events, state: folded.state };
  }

  async #finish(task: TaskV1, checkpoint: RunCheckpoint, end: Extract<ParkedStep, { phase: 'end' }>): Promise<ResultV1> {
    const { request } = task;
    if (end.segments !== checkpoint.next || end.frames !== checkpoint.frames) {
      throw new ArteriaError('SEGMENT_MISMATCH', `the run's end names ${end.segments} segments of ${end.frames} frames; the run has ${checkpoint.next} of ${checkpoint.frames}`);
    }
    if (end.digest !== runDigest(checkpoint.headerSha256, checkpoint.segmentSha256s)) {
      throw new ArteriaError('SEGMENT_MISMATCH', "the run's end carries a digest that does not match its header's and segments' SHA-256");
    }
    const header = await this.#header(task);
    const fetched = epochNow();
    const output = await this.#deps.incremental.finish(checkpoint.algorithm, { header: header.bytes, state: checkpoint.state, frames: checkpoint.frames });
    const timings = { ...request.timings, ...(end.acquired === undefined ? {} : { acquired: end.acquired }), fetched, computed: epochNow() };
    return { v: 1, requestId: request.id, tenant: request.tenant, device: request.device, status: 'ok', algorithm: checkpoint.algorithm, output, timings };
  }

  /**
   * Publishes the partial events recorded and not yet published, in order, noting each.
   * `last`: the checkpoint the drain ended on; when it has nothing left to publish, there
   * is nothing to read (a run without events, such as balloon-inflation's, never reads it here).
   */
  async #flush(task: TaskV1, last: RunCheckpoint | undefined): Promise<void> {
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
