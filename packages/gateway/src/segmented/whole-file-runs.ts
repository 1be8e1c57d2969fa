import { stat, rm } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { ArteriaError, MAX_SEGMENTS_PER_RUN, epochNow, toArteriaError, type ErrorCode } from '@arteria/protocol';
import { DEFAULT_MAX_HEADER_BYTES } from '@arteria/dicom';
import { deidentifyFile } from '@arteria/deid';
import { errorFields } from '../log.js';
import type { OutboxEntry } from '../outbox/outbox.js';
import { readFileStart, readGrowingHeader, type GrowingRunHeader } from './run-header.js';
import { requestedAlgorithm, type RunIntakeContext } from '../runs/run-intake.js';
import type { SegmentedIntake } from './segmented-intake.js';
import { spoolPath, syncFolder } from '../outbox/spool.js';
import type { RunSource, SendOptions } from '../types.js';
import { runObjectKey } from '../upload/upload.js';

/** How long an algorithm that answered NOT_INCREMENTAL is sent whole without asking again (its pinned version may change). */
const NOT_INCREMENTAL_FOR_MS = 60 * 60 * 1000;
/**
 * A platform's refusals of a run in segments that the whole-file path may still take:
 * NOT_INCREMENTAL (the version has no incremental contract, or the workers run no segmented
 * runs), INVALID_REQUEST (a platform that predates segmented runs refuses their messages as
 * requests), TOO_MANY_OPEN_RUNS (the device holds its cap of open runs: for this run only).
 */
const SENT_WHOLE_ON = new Set<string>(['NOT_INCREMENTAL', 'INVALID_REQUEST', 'TOO_MANY_OPEN_RUNS']);
const isSentWholeOn = (code: string): code is ErrorCode => SENT_WHOLE_ON.has(code);
/** What the segmented intake refuses that the whole-file path may still take (or refuses itself, in its own words). */
const SEND_WHOLE_INSTEAD = new Set<ErrorCode>(['UNSUPPORTED_DICOM', 'UNSUPPORTED_TRANSFER_SYNTAX', 'INVALID_DICOM', 'RUN_INCOMPLETE', 'INPUT_NOT_FOUND']);

export interface WholeFileRunsContext extends RunIntakeContext {
  segmentedIntake: SegmentedIntake;
  /** Stops following a segmented run at once (it is to be sent whole). */
  stopFollowing: (entryId: string) => void;
}

/**
 * Large complete files sent in segments. A file handed to send() that is larger than
 * `segmentWholeFilesOverBytes` and could be sent while acquired (native multi-frame pixels,
 * no burned-in annotation to mask) goes up as a segmented run whose file is already
 * complete, so the platform folds each segment into the algorithm's incremental state as it
 * arrives and answers about when the last byte is up, instead of computing once the whole
 * object has arrived. Everything else keeps the one-shot whole-file protocol.
 *
 * An algorithm without the incremental contract answers the run-open NOT_INCREMENTAL: the
 * run is marked in the segment journal (before the result's PUBACK), its segments stop, and
 * the entry becomes a whole-file run (de-identified into the spool first when
 * de-identification is on, as send() would have done) that the uploader sends; the
 * algorithm is then sent whole for an hour without asking. A restart finds the mark and
 * goes on with the fallback.
 */
export class WholeFileRuns {
  readonly #ctx: WholeFileRunsContext;
  readonly #notIncremental = new Map<string, number>();
  readonly #fallingBack = new Map<string, Promise<void>>();
  /** Takes in progress, by file and algorithm: the same file sent twice at once joins one run. */
  readonly #accepting = new Map<string, Promise<OutboxEntry | undefined>>();

  constructor(context: WholeFileRunsContext) {
    this.#ctx = context;
  }

  /** Goes on with the fallbacks a previous run of the gateway had marked. */
  start(): void {
    for (const id of this.#ctx.outbox.segments.fallingBack()) this.#fallBack(id);
  }

  /** Resolves once no fallback is on its way. */
  async stopped(): Promise<void> {
    await Promise.allSettled([...this.#fallingBack.values()]);
  }

  /**
   * Takes a complete file in segments when it should go so (or joins the run of the same
   * file on its way); undefined: send it whole.
   */
  async accept(source: RunSource, options: SendOptions): Promise<OutboxEntry | undefined> {
    const { config, fleet, outbox, deid, logger } = this.#ctx;
    if (typeof source !== 'string' || config.segmentWholeFilesOverBytes === 0) return undefined;
    const algorithm = requestedAlgorithm(options.algorithm, fleet);
    if (this.sendsWhole(algorithm)) return undefined;
    const path = resolvePath(source);
    const size = await stat(path).then((s) => s.size, () => 0);
    if (size <= config.segmentWholeFilesOverBytes) return undefined;
    const header = await this.#header(path);
    if (header === undefined || header.valueOffset + header.pixelLength > size) return undefined;
    if (deid !== undefined && header.burnedIn && fleet.deidentificationProfile.burnedInAnnotation.policy === 'mask') return undefined;
    // Joins as a whole file would: by instance when de-identified, else by path.
    const original = header.run.header.sopInstanceUid;
    const joined = deid === undefined ? outbox.findLive(path, algorithm) : outbox.findLiveByInstance(deid.key.uid(original), algorithm);
    if (joined !== undefined) {
      logger.info('run is already in the outbox; waiting for its result', { entryId: joined.id });
      return joined;
    }
    const key = `${algorithm}\n${deid === undefined ? path : original}`;
    const inProgress = this.#accepting.get(key);
    if (inProgress !== undefined) return inProgress;
    const taking = this.#take(path, header, options, algorithm).finally(() => this.#accepting.delete(key));
    this.#accepting.set(key, taking);
    return taking;
  }

  async #take(path: string, header: GrowingRunHeader, options: SendOptions, algorithm: string): Promise<OutboxEntry | undefined> {
    const { config } = this.#ctx;
    const frames = header.pixelLength / header.frameBytes;
    // Segments of about wholeFileSegmentBytes, and never more than a run may have.
    const framesPerSegment = Math.max(1, Math.floor(config.wholeFileSegmentBytes / header.frameBytes), Math.ceil(frames / (MAX_SEGMENTS_PER_RUN / 2)));
    try {
      const { entry } = await this.#ctx.segmentedIntake.accept({ path }, { ...options, algorithm, framesPerSegment }, true);
      return entry;
    } catch (err) {
      if (err instanceof ArteriaError && SEND_WHOLE_INSTEAD.has(err.code)) return undefined;
      throw err;
    }
  }

  /**
   * The platform refused a run in segments (a code of SENT_WHOLE_ON). True when that is not
   * the run's answer: a whole file sent in segments is then sent whole; a file followed
   * while it arrives fails with the refusal as a typed error (its sender, the DICOM port,
   * sends the file whole once it is complete: the study is answered once, by that). False:
   * the answer stands (a frame source: its caller holds the frames).
   * Synchronous: the mark is committed before the result's PUBACK.
   */
  refusedInSegments(requestId: string, code: string, message: string): boolean {
    const { outbox, logger } = this.#ctx;
    if (!isSentWholeOn(code)) return false;
    const entry = outbox.findByRequestId(requestId);
    if (entry?.kind !== 'segmented' || !['pending', 'uploaded', 'published'].includes(entry.state)) return false;
    // Any segmented run's answer says so (a C-STORE streamed while arriving too): files for it go whole for a while. A cap is this run's only.
    if (code !== 'TOO_MANY_OPEN_RUNS') this.#notIncremental.set(entry.algorithm, epochNow() + NOT_INCREMENTAL_FOR_MS);
    const run = outbox.segments.get(entry.id);
    if (run?.wholeFile === true) {
      outbox.segments.markFallback(entry.id, epochNow());
      if (!this.#fallingBack.has(entry.id)) logger.info(`the platform cannot take this run in segments (${code}); sending the file whole`, { entryId: entry.id, algorithm: entry.algorithm });
      this.#ctx.stopFollowing(entry.id);
      this.#fallBack(entry.id);
      return true;
    }
    if (run?.plannedFrames === undefined) return false;
    this.#ctx.stopFollowing(entry.id);
    outbox.fail(entry.id, new ArteriaError(code, `the platform cannot take this run in segments (${message}); send the file whole`), epochNow());
    return true;
  }

  /** Whether runs for `algorithm` go whole for now (the platform refused it in segments lately). */
  sendsWhole(algorithm: string): boolean {
    return (this.#notIncremental.get(algorithm) ?? 0) > epochNow();
  }

  /** A run's header, or undefined when it cannot go in segments (the whole-file path says why, if it refuses it too). */
  async #header(path: string): Promise<GrowingRunHeader | undefined> {
    try {
      return readGrowingHeader(await readFileStart(path, this.#ctx.config.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES));
    } catch (err) {
      if (err instanceof ArteriaError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  #fallBack(entryId: string): void {
    if (this.#fallingBack.has(entryId) || this.#ctx.lifetime.aborted) return;
    const job = this.#sendWhole(entryId)
      .catch((err: unknown) => {
        if (this.#ctx.lifetime.aborted) return; // the mark stays: the next start goes on
        const error = (err as NodeJS.ErrnoException).code === 'ENOENT' ? new ArteriaError('INPUT_NOT_FOUND', `the run's source is gone: ${(err as Error).message}`, { cause: err }) : toArteriaError(err, 'INTERNAL');
        this.#ctx.logger.error('a file sent in segments could not be sent whole', { entryId, ...errorFields(error) });
        this.#ctx.outbox.fail(entryId, error, epochNow());
      })
      .finally(() => this.#fallingBack.delete(entryId));
    this.#fallingBack.set(entryId, job);
  }

  /** Makes the entry a whole-file run: its source as send() would have kept it, a whole-file object key. */
  async #sendWhole(entryId: string): Promise<void> {
    const { outbox, deid, fleet, spool, config } = this.#ctx;
    const entry = outbox.get(entryId);
    const run = outbox.segments.get(entryId);
    if (entry?.kind !== 'segmented' || run === undefined) return;
    let source = { sourcePath: entry.sourcePath, spooled: entry.spooled };
    if (deid !== undefined) {
      // The original never enters the outbox: the whole-file run is a de-identified copy, as send() makes one.
      const copy = spoolPath(spool, entryId, '');
      const deidentified = await deidentifyFile(entry.sourcePath, copy, fleet.deidentificationProfile, deid.key, config.maxHeaderBytes);
      await syncFolder(spool);
      deid.store.put(deidentified.deidentified, deidentified.original, epochNow());
      source = { sourcePath: copy, spooled: true };
    }
    if (this.#ctx.lifetime.aborted) return;
    const objectKey = runObjectKey({ tenant: config.tenant, device: config.device, instanceUid: entry.instanceUid, entryId });
    if (outbox.sendWhole(entryId, { ...source, objectKey }, epochNow()) === undefined && source.spooled && !entry.spooled) {
      await rm(source.sourcePath, { force: true }); // the run finished meanwhile: its copy is not needed
    }
    await rm(run.headerPath, { force: true });
  }
}
