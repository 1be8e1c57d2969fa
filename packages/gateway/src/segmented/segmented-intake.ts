import { createHash, randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { ArteriaError, MAX_SEGMENT_BYTES, RequestV1, epochNow, segmentedRunId, type RunOpenV1 } from '@arteria/protocol';
import { assertMultiFrameRun, readHeaderFromFile, DEFAULT_MAX_HEADER_BYTES } from '@arteria/dicom';
import { deidentify, type DeidentifiedRun } from '@arteria/deid';
import type { OutboxEntry } from '../outbox/outbox.js';
import { readFileStart, readGrowingHeader, type GrowingRunHeader } from './run-header.js';
import { requestedAlgorithm, type RunIntakeContext } from '../runs/run-intake.js';
import { removeFile, spoolPath, writeDurably } from '../outbox/spool.js';
import type { StreamOptions } from '../types.js';

const HEADER_POLL_MS = 50;
export const DEFAULT_FRAMES_PER_SEGMENT = 10;
export const DEFAULT_STABLE_AFTER_MS = 10_000;

/** What the intake of segmented runs works with: the same as the whole-run intake's. */
export type SegmentedIntakeContext = RunIntakeContext;

/** A segmented run's source: a Part 10 file still being written, or a device handing frames (its header first). */
export type SegmentedSource = { path: string } | { header: Uint8Array };

/** A segmented run taken into the outbox, and its frame geometry. */
export interface AcceptedSegmentedRun {
  entry: OutboxEntry;
  frameBytes: number;
}

/**
 * Owns `→ pending` for segmented runs: reads the run's header (waiting for a file being
 * written to get that far), refuses what cannot be sent segmented (UNSUPPORTED_DICOM,
 * UNSUPPORTED_TRANSFER_SYNTAX, INVALID_DICOM, RUN_INCOMPLETE), de-identifies the header,
 * spools it, and records the run with its run-open in the outbox. The same instance sent
 * again to the same algorithm while on its way joins that run.
 */
export class SegmentedIntake {
  readonly #ctx: SegmentedIntakeContext;

  constructor(context: SegmentedIntakeContext) {
    this.#ctx = context;
  }

  /**
   * `wholeFile`: a complete file handed to send() (whole-file-runs.ts), which has looked for
   * a run to join already and falls back to sending it whole on NOT_INCREMENTAL.
   */
  async accept(source: SegmentedSource, options: StreamOptions, wholeFile = false): Promise<AcceptedSegmentedRun> {
    const { config, fleet, traces, deid, outbox, spool, logger } = this.#ctx;
    const algorithm = requestedAlgorithm(options.algorithm, fleet);
    const framesPerSegment = options.framesPerSegment ?? DEFAULT_FRAMES_PER_SEGMENT;
    const stableAfterMs = options.stableAfterMs ?? DEFAULT_STABLE_AFTER_MS;
    if (!Number.isInteger(framesPerSegment) || framesPerSegment < 1) throw new ArteriaError('INVALID_REQUEST', `framesPerSegment ${framesPerSegment}: expected a positive integer`);
    const acquiredAt = epochNow();
    const header = 'path' in source ? await this.#waitForHeader(source.path, stableAfterMs, options.signal) : this.#headerOf(source.header);
    if (!RequestV1.shape.instanceUid.safeParse(header.run.header.sopInstanceUid).success) {
      throw new ArteriaError('UNSUPPORTED_DICOM', `SOP Instance UID ${JSON.stringify(header.run.header.sopInstanceUid)} is not a valid DICOM UID`);
    }
    options.signal?.throwIfAborted();
    this.#assertOpen();
    const sourcePath = 'path' in source ? resolvePath(source.path) : undefined;
    const original = header.run.header.sopInstanceUid;
    const instanceUid = deid === undefined ? original : deid.key.uid(original);
    const joined = wholeFile ? undefined : (outbox.findLiveByInstance(instanceUid, algorithm) ?? (sourcePath === undefined ? undefined : outbox.findLive(sourcePath, algorithm)));
    if (joined?.kind === 'segmented') {
      logger.info('run is already in the outbox; joining it', { entryId: joined.id, instanceUid });
      return { entry: joined, frameBytes: header.frameBytes };
    }
    const { bytes: headerBytes, run: deidentified } = this.#deidentifiedHeader(header);
    const entryId = randomUUID();
    const { tenant, device } = config;
    const objectKey = `${tenant}/${device}/${instanceUid}/${entryId}`;
    const headerUri = `s3://${config.s3.bucket}/${objectKey}/header`;
    const headerSha256 = createHash('sha256').update(headerBytes).digest('hex');
    const runId = segmentedRunId({ tenant, device, instanceUid, algorithm, headerUri, headerSha256 });
    const trace = traces.begin(entryId, options.trace, { tenant, device, algorithm, acquiredAt });
    const priority = options.priority ?? 'clinical';
    const open: RunOpenV1 = {
      v: 1,
      kind: 'run-open',
      id: runId,
      tenant,
      device,
      algorithm,
      instanceUid,
      header: { uri: headerUri, size: headerBytes.length, sha256: headerSha256, contentType: 'application/dicom' },
      priority,
      ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
      timings: { acquired: acquiredAt },
      ...(trace === undefined ? {} : { trace }),
    };
    outbox.assertRoom(); // before writing: a full outbox must not fill the disk too
    const headerPath = spoolPath(spool, entryId, 'header');
    // A frame source's frames are spooled (durably, before they are acknowledged) next to it.
    const framesPath = sourcePath === undefined ? spoolPath(spool, entryId, 'frames') : undefined;
    try {
      await writeDurably(headerPath, headerBytes, spool);
      if (framesPath !== undefined) await writeDurably(framesPath, new Uint8Array(0), spool);
      this.#assertOpen();
      if (deid !== undefined && deidentified !== undefined) deid.store.put(deidentified.deidentified, deidentified.original, epochNow());
      const entry = outbox.add(
        { id: entryId, kind: 'segmented', sourcePath: sourcePath ?? framesPath ?? '', spooled: sourcePath === undefined || options.ownSource === true, algorithm, instanceUid, objectKey, priority, deadline: options.deadline, acquiredAt, trace },
        epochNow(),
        {
          entryId,
          requestId: runId,
          headerPath,
          pixelOffset: sourcePath === undefined ? 0 : header.valueOffset,
          frameBytes: header.frameBytes,
          plannedFrames: sourcePath === undefined ? undefined : header.pixelLength / header.frameBytes,
          // Whole frames, never more bytes than the platform takes in one segment (MAX_SEGMENT_BYTES).
          framesPerSegment: Math.min(framesPerSegment, Math.max(1, Math.floor(MAX_SEGMENT_BYTES / header.frameBytes))),
          stableAfterMs,
          endWhenStable: options.endWhenStable ?? false,
          headerUri,
          headerSize: headerBytes.length,
          headerSha256,
          openJson: JSON.stringify(open),
          wholeFile,
        },
      );
      return { entry, frameBytes: header.frameBytes };
    } catch (err) {
      traces.finished(entryId, { error: { code: err instanceof ArteriaError ? err.code : 'INTERNAL', message: String(err) } });
      await removeFile(headerPath);
      if (framesPath !== undefined) await removeFile(framesPath);
      throw err;
    }
  }

  /** A frame source's header: the Part 10 bytes up to (at least) the value of Pixel Data. */
  #headerOf(bytes: Uint8Array): GrowingRunHeader {
    const header = readGrowingHeader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if (header === undefined) throw new ArteriaError('INVALID_DICOM', 'a frame source\'s header must hold the Part 10 bytes up to the value of Pixel Data (7FE0,0010)');
    return header;
  }

  /** Waits until a file being written holds its whole header; typed refusals as soon as the header shows them. */
  async #waitForHeader(path: string, stableAfterMs: number, signal: AbortSignal | undefined): Promise<GrowingRunHeader> {
    const maxHeaderBytes = this.#ctx.config.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    let lastSize = -1;
    let lastGrowthAt = epochNow();
    for (;;) {
      signal?.throwIfAborted();
      this.#assertOpen();
      const size = await stat(path).then((s) => s.size, (err: unknown) => {
        throw new ArteriaError('INPUT_NOT_FOUND', `run file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
      });
      const header = readGrowingHeader(await readFileStart(path, Math.min(size, maxHeaderBytes)));
      if (header !== undefined) return header;
      if (size >= maxHeaderBytes) throw new ArteriaError('INVALID_DICOM', `no Pixel Data (7FE0,0010) within the first ${maxHeaderBytes} bytes of ${path}`);
      if (size !== lastSize) {
        lastSize = size;
        lastGrowthAt = epochNow();
      } else if (epochNow() - lastGrowthAt >= stableAfterMs) {
        // Stopped growing before Pixel Data: a complete object that is not a run says why; otherwise it is cut short.
        assertMultiFrameRun(await readHeaderFromFile(path, { maxHeaderBytes }).catch((err: unknown) => {
          throw err instanceof ArteriaError ? err : new ArteriaError('RUN_INCOMPLETE', `${path} stopped growing for ${stableAfterMs} ms before its header was complete (${size} bytes)`, { cause: err });
        }));
        throw new ArteriaError('RUN_INCOMPLETE', `${path} stopped growing for ${stableAfterMs} ms before its header was complete (${size} bytes)`);
      }
      await new Promise((resolve) => setTimeout(resolve, HEADER_POLL_MS));
    }
  }

  /** The header object: de-identified when de-identification is on (the Pixel Data element's own header kept as it is). */
  #deidentifiedHeader(header: GrowingRunHeader): { bytes: Buffer; run?: Omit<DeidentifiedRun, 'bytes'> } {
    const { deid, fleet } = this.#ctx;
    if (deid === undefined) return { bytes: header.bytes };
    const profile = fleet.deidentificationProfile;
    if (header.burnedIn && profile.burnedInAnnotation.policy === 'mask') {
      throw new ArteriaError('UNSUPPORTED_DICOM', 'the run has burned-in annotation to mask, which needs its whole pixels; send it whole instead of while it is acquired');
    }
    const { bytes, ...run } = deidentify(header.bytes.subarray(0, header.tagOffset), profile, deid.key);
    return { bytes: Buffer.concat([bytes, header.bytes.subarray(header.tagOffset)]), run };
  }

  #assertOpen(): void {
    if (this.#ctx.lifetime.aborted) throw new ArteriaError('GATEWAY_NOT_RUNNING', 'the gateway is closing; the run was not taken');
  }
}
