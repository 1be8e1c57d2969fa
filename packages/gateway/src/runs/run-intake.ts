import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { AlgorithmSpec, ArteriaError, RequestV1, epochNow } from '@arteria/protocol';
import { assertMultiFrameRun, readHeader, readHeaderFromFile, type DicomHeader } from '@arteria/dicom';
import type { GatewayConfig } from '../config/config.js';
import { deidentify, type DeidentifiedRun, deidentifyFile, type DeidentificationKey, type ReidentificationStore } from '@arteria/deid';
import type { FleetLink } from '../config/fleet-link.js';
import type { GatewayLogger } from '../log.js';
import type { NewEntry, Outbox, OutboxEntry, OutboxResult } from '../outbox/outbox.js';
import type { RunTraces } from './run-traces.js';
import { removeFile, spoolPath, syncFolder, writeDurably } from '../outbox/spool.js';
import type { RunSource, SendOptions } from '../types.js';
import { runObjectKey } from '../upload/upload.js';

export interface RunIntakeContext {
  config: GatewayConfig;
  outbox: Outbox;
  spool: string;
  /** Present unless de-identification is off. */
  deid: { key: DeidentificationKey; store: ReidentificationStore } | undefined;
  fleet: FleetLink;
  traces: RunTraces;
  logger: GatewayLogger;
  lifetime: AbortSignal;
}

/** The algorithm a run asks for: the caller's, else the fleet's; refused (INVALID_REQUEST) unless a valid `name@range`. */
export function requestedAlgorithm(requested: string | undefined, fleet: FleetLink): string {
  const algorithm = requested ?? fleet.algorithm;
  const spec = AlgorithmSpec.safeParse(algorithm);
  if (!spec.success) throw new ArteriaError('INVALID_REQUEST', `algorithm ${JSON.stringify(algorithm)}: ${spec.error.issues[0]?.message ?? 'invalid'}`);
  return algorithm;
}

/**
 * Owns `→ pending`: checks a run handed to send(), de-identifies it and records it in the
 * outbox (or finds the entry of the same run already on its way). Nothing is kept of a
 * run it refuses.
 */
export class RunIntake {
  readonly #ctx: RunIntakeContext;

  constructor(context: RunIntakeContext) {
    this.#ctx = context;
  }

  /**
   * The DICOM header is checked first: a file that is not a multi-frame DICOM run is
   * refused (INVALID_DICOM, UNSUPPORTED_DICOM) before anything is stored or uploaded.
   */
  async accept(source: RunSource, options: SendOptions, sentAt = epochNow(), read?: DicomHeader): Promise<OutboxEntry> {
    const { config, fleet, traces, deid } = this.#ctx;
    const { signal } = options;
    const algorithm = requestedAlgorithm(options.algorithm, fleet);
    const acquiredAt = epochNow();
    const header = read ?? (await this.#readHeader(source));
    assertMultiFrameRun(header);
    if (!RequestV1.shape.instanceUid.safeParse(header.sopInstanceUid).success) {
      throw new ArteriaError('UNSUPPORTED_DICOM', `SOP Instance UID ${JSON.stringify(header.sopInstanceUid)} is not a valid DICOM UID`);
    }
    signal?.throwIfAborted();
    this.#assertOpen();
    const entryId = randomUUID();
    const { tenant, device } = config;
    // De-identified UIDs are keyed hashes of the originals: known before any byte is rewritten.
    const instanceUid = deid === undefined ? header.sopInstanceUid : deid.key.uid(header.sopInstanceUid);
    const trace = traces.begin(entryId, options.trace, { tenant, device, algorithm, acquiredAt });
    const base = { id: entryId, algorithm, instanceUid, objectKey: runObjectKey({ tenant, device, instanceUid, entryId }), priority: options.priority ?? 'clinical', deadline: options.deadline, acquiredAt, trace };
    const entry = await this.#store(source, base, signal, sentAt).catch((err: unknown) => {
      const error = asDiskFull(err) ?? err;
      traces.finished(entryId, { error: { code: error instanceof ArteriaError ? error.code : 'INTERNAL', message: String(error) } });
      throw error;
    });
    // Joined a run already on its way: that run's trace goes on; this span ends unused.
    if (entry.id !== entryId) traces.discard(entryId);
    return entry;
  }

  /**
   * The answer of this same run when it was answered within `answerAgainWithinMs` (and no
   * entry of it is live): a file at the same path holding the same bytes (sameFile), or an
   * image of the same SOP Instance (de-identified, the original's path never enters the
   * outbox; without de-identification, bytes handed over must also be the same bytes).
   * Else the header, when it had to be read for the check, for accept() to use. A run that
   * cannot be read is left to accept(), which refuses it by name.
   */
  async answered(source: RunSource, options: SendOptions): Promise<{ result: OutboxResult } | { header: DicomHeader | undefined }> {
    const { config, fleet, outbox, deid, logger } = this.#ctx;
    const none = { header: undefined };
    if (config.answerAgainWithinMs === 0) return none;
    const algorithm = requestedAlgorithm(options.algorithm, fleet);
    const since = epochNow() - config.answerAgainWithinMs;
    let found: ReturnType<Outbox['answeredSince']>;
    if (deid === undefined && typeof source === 'string') {
      const sourcePath = resolvePath(source);
      if (outbox.findLive(sourcePath, algorithm) !== undefined) return none;
      found = outbox.answeredSince({ sourcePath }, algorithm, since);
      if (found !== undefined && !(await sameFile(sourcePath, found.entry))) return none;
    } else {
      const header = await this.#readHeader(source).catch(() => undefined);
      if (header === undefined) return none;
      const instanceUid = deid === undefined ? header.sopInstanceUid : deid.key.uid(header.sopInstanceUid);
      if (outbox.findLiveByInstance(instanceUid, algorithm) !== undefined) return { header };
      found = outbox.answeredSince({ instanceUid }, algorithm, since);
      if (found !== undefined && deid === undefined && typeof source !== 'string' && createHash('sha256').update(source.bytes).digest('hex') !== found.entry.sha256) return { header };
      if (found === undefined) return { header };
    }
    if (found === undefined) return none;
    logger.info('run was answered a moment ago; that answer is given again', { entryId: found.entry.id, requestId: found.result.requestId, algorithm });
    return { result: found.result };
  }

  /**
   * Takes the run into the outbox, or joins the entry already there; nothing is kept when it
   * fails. An entry of the same run answered since `sentAt` is returned as it is (done): it
   * was on its way when this send began, and its answer came while the run was read.
   */
  async #store(source: RunSource, base: Omit<NewEntry, 'sourcePath' | 'spooled'>, signal: AbortSignal | undefined, sentAt: number): Promise<OutboxEntry> {
    const { outbox, spool, deid, logger } = this.#ctx;
    const { instanceUid, algorithm, id: entryId } = base;
    const joined = deid === undefined ? undefined : outbox.findLiveByInstance(instanceUid, algorithm);
    if (joined !== undefined) {
      logger.info('run is already in the outbox; waiting for its result', { entryId: joined.id, instanceUid });
      return joined;
    }
    if (deid !== undefined) {
      // Only the de-identified copy is kept for upload: the original never enters the outbox.
      const { run, sourcePath } = await this.#deidentify(source, entryId, deid);
      try {
        signal?.throwIfAborted();
        this.#assertOpen();
        // Checked again after the awaits, with nothing in between and the add.
        const meanwhile = outbox.findLiveByInstance(instanceUid, algorithm) ?? outbox.answeredSince({ instanceUid }, algorithm, sentAt)?.entry;
        if (meanwhile !== undefined) {
          await removeFile(sourcePath);
          return meanwhile;
        }
        deid.store.put(run.deidentified, run.original, epochNow());
        return outbox.add({ ...base, instanceUid: run.deidentified.sopInstanceUid, sourcePath, spooled: true }, epochNow());
      } catch (err) {
        await removeFile(sourcePath);
        throw err;
      }
    }
    if (typeof source === 'string') {
      const sourcePath = resolvePath(source);
      const existing = outbox.findLive(sourcePath, algorithm) ?? outbox.answeredSince({ sourcePath }, algorithm, sentAt)?.entry;
      if (existing !== undefined) logger.info('run is already in the outbox; waiting for its result', { entryId: existing.id, sourcePath });
      return existing ?? outbox.add({ ...base, sourcePath, spooled: false }, epochNow());
    }
    const sourcePath = spoolPath(spool, entryId, source.name);
    outbox.assertRoom(); // before writing the bytes: a full outbox must not fill the disk too
    try {
      await writeDurably(sourcePath, source.bytes, spool);
      this.#assertOpen();
      return outbox.add({ ...base, sourcePath, spooled: true }, epochNow());
    } catch (err) {
      await removeFile(sourcePath);
      throw err;
    }
  }

  /**
   * De-identifies the run under the profile in effect into the spool folder (a file is
   * streamed: its pixels are never held in memory).
   */
  async #deidentify(source: RunSource, entryId: string, deid: NonNullable<RunIntakeContext['deid']>): Promise<{ run: Omit<DeidentifiedRun, 'bytes'>; sourcePath: string }> {
    const { outbox, spool, config, fleet } = this.#ctx;
    outbox.assertRoom(); // before writing: a full outbox must not fill the disk too
    // Named by the entry id alone: a modality's file name may carry the patient's name or UIDs.
    const sourcePath = spoolPath(spool, entryId, '');
    if (typeof source === 'string') {
      const run = await deidentifyFile(source, sourcePath, fleet.deidentificationProfile, deid.key, config.maxHeaderBytes);
      await syncFolder(spool);
      return { run, sourcePath };
    }
    const { bytes, ...run } = deidentify(source.bytes, fleet.deidentificationProfile, deid.key);
    await writeDurably(sourcePath, bytes, spool);
    return { run, sourcePath };
  }

  async #readHeader(source: RunSource): Promise<DicomHeader> {
    try {
      if (typeof source === 'string') return await readHeaderFromFile(source, { maxHeaderBytes: this.#ctx.config.maxHeaderBytes });
      return readHeader(source.bytes);
    } catch (err) {
      if (err instanceof ArteriaError) throw err;
      const name = typeof source === 'string' ? source : source.name;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ArteriaError('INPUT_NOT_FOUND', `run file ${name} does not exist`, { cause: err });
      throw new ArteriaError('INVALID_DICOM', `cannot read the DICOM header of ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The gateway began closing while the run was read: it is not taken. */
  #assertOpen(): void {
    if (this.#ctx.lifetime.aborted) throw new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closing; the run was not taken');
  }
}

/** A write refused for want of space (spool file or outbox database): the run was not taken. */
function asDiskFull(err: unknown): ArteriaError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT' && code !== 'SQLITE_FULL') return undefined;
  return new ArteriaError('GATEWAY_DISK_FULL', `the outbox's disk is full (${String(code)}): the run was not taken; nothing already accepted is affected`, { cause: err });
}

/**
 * Whether the file at `path` holds what `entry` sent: the same bytes when the entry knows
 * their digest (a file written again with the same content, as a series made again from its
 * frames, is the same run), else not modified since the entry was taken.
 */
async function sameFile(path: string, entry: OutboxEntry): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return false;
  if (entry.sha256 === undefined) return info.mtimeMs <= entry.createdAt;
  if (entry.size !== undefined && info.size !== entry.size) return false;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex') === entry.sha256;
}
