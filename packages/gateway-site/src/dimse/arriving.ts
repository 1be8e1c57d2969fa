import { randomUUID } from 'node:crypto';
import { link, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ArteriaError } from '@arteria/protocol';
import { errorFields, type Gateway, type GatewayLogger, readFileStart, readGrowingHeader } from '@arteria/gateway';
import { readInstanceAttributes } from './instance-file.js';

/** An instance whose data set is arriving by C-STORE, written to `path` as it comes. */
export interface ArrivingInstance {
  path: string;
  sopInstanceUid: string;
  /** Aborts when the instance will never be stored (dropped association, refused data set). */
  dropped: AbortSignal;
}

/** What streaming an arriving instance came to, per algorithm. */
export type StreamOutcome =
  /** Not streamed (not a native multi-frame run, or the algorithm cannot take it segmented): send the stored file whole. */
  | 'whole'
  | 'done'
  /** The gateway closed or stopped waiting: the run is in the outbox, its file must stay. */
  | 'keep'
  | 'failed';

const POLL_MS = 20;
/** How long an arriving instance may take to show its header before it is left to the whole-file path. */
const HEADER_WAIT_MS = 30_000;
/** A C-STORE that stalls this long is over for the stream (the receiver drops it when its association ends). */
const STREAM_STABLE_MS = 60_000;
/** Errors that mean "send this instance whole instead". */
const WHOLE_INSTEAD = new Set(['UNSUPPORTED_TRANSFER_SYNTAX', 'UNSUPPORTED_DICOM', 'INVALID_DICOM', 'NOT_INCREMENTAL', 'INVALID_REQUEST', 'TOO_MANY_OPEN_RUNS']);
/** The platform's refusals of a run in segments (the gateway fails the run with them): the whole-file path may still take the instance. */
const REFUSED_IN_SEGMENTS = new Set(['NOT_INCREMENTAL', 'INVALID_REQUEST', 'TOO_MANY_OPEN_RUNS']);

/**
 * Streams multi-frame instances while their C-STORE is still arriving: as soon as the
 * header is on disk, each algorithm the routing picks gets a segmented run following the
 * file (`Gateway.sendFollow`), so de-identification and upload start before the
 * association's last byte. The file is followed through a hard link in `{folder}.streaming`
 * (the receiver renames the instance once stored; the link keeps the bytes for the run,
 * and the gateway removes it when the run finishes). Anything that cannot go segmented
 * (compressed, one frame, an algorithm without an incremental contract) is left to the
 * whole-file send once the instance is stored.
 */
export class ArrivingStreams {
  readonly #gateway: Gateway;
  readonly #logger: GatewayLogger;
  readonly #folder: string;
  readonly #streams = new Map<string, { outcome: Promise<Map<string, StreamOutcome>>; stored: boolean }>();

  constructor(gateway: Gateway, receiveFolder: string, logger: GatewayLogger) {
    this.#gateway = gateway;
    this.#folder = `${receiveFolder}.streaming`;
    this.#logger = logger;
  }

  /** Starts streaming an arriving instance (the receiver calls it when its data set begins). */
  arriving(instance: ArrivingInstance): void {
    if (this.#streams.has(instance.sopInstanceUid)) return;
    const state = { outcome: Promise.resolve(new Map<string, StreamOutcome>()), stored: false };
    state.outcome = this.#stream(instance, () => state.stored).catch((err: unknown) => {
      this.#logger.warn('streaming an arriving instance failed; it is sent whole once stored', { sopInstanceUid: instance.sopInstanceUid, ...errorFields(err) });
      return new Map<string, StreamOutcome>();
    });
    this.#streams.set(instance.sopInstanceUid, state);
  }

  /** The instance is stored: the outcome per algorithm of its stream (empty: it was not streamed); forgets it. */
  async outcome(sopInstanceUid: string): Promise<Map<string, StreamOutcome>> {
    const state = this.#streams.get(sopInstanceUid);
    if (state === undefined) return new Map();
    state.stored = true; // a stream that has not seen the header by now never will: the whole-file send goes
    try {
      return await state.outcome;
    } finally {
      this.#streams.delete(sopInstanceUid);
    }
  }

  async #stream(instance: ArrivingInstance, stored: () => boolean): Promise<Map<string, StreamOutcome>> {
    const outcomes = new Map<string, StreamOutcome>();
    const attributes = await this.#waitForHeader(instance, stored);
    if (attributes === undefined) return outcomes;
    await mkdir(this.#folder, { recursive: true });
    await Promise.all(
      this.#gateway.route(attributes).map(async (algorithm) => {
        // One link per run: the gateway removes a run's own copy when that run finishes.
        const followed = join(this.#folder, `${randomUUID()}.dcm`);
        try {
          await link(instance.path, followed);
        } catch (err) {
          this.#logger.warn('an arriving instance cannot be followed; it is sent whole once stored', { path: instance.path, ...errorFields(err) });
          outcomes.set(algorithm, 'whole');
          return;
        }
        outcomes.set(algorithm, await this.#send(followed, algorithm, instance));
      }),
    );
    return outcomes;
  }

  async #send(followed: string, algorithm: string, instance: ArrivingInstance): Promise<StreamOutcome> {
    let accepted = false;
    try {
      const result = await this.#gateway.sendFollow(followed, {
        algorithm,
        signal: instance.dropped,
        stableAfterMs: STREAM_STABLE_MS,
        ownSource: true,
        onAccepted: (entry) => {
          accepted = true;
          // Joined a run already on its way (the same instance again): this link is not its source.
          if (entry.sourcePath !== followed) void rm(followed, { force: true });
        },
      });
      if (result.status === 'rejected' && result.error !== undefined && result.error.code === 'NOT_INCREMENTAL') return 'whole';
      this.#logger.info('an instance streamed while it arrived was answered', { sopInstanceUid: instance.sopInstanceUid, algorithm, status: result.status });
      return 'done';
    } catch (err) {
      if (!accepted) await rm(followed, { force: true });
      if (instance.dropped.aborted) return 'failed'; // never stored: nothing to send whole either
      const code = err instanceof ArteriaError ? err.code : undefined;
      if (code !== undefined && (accepted ? REFUSED_IN_SEGMENTS : WHOLE_INSTEAD).has(code)) return 'whole';
      if (code === 'GATEWAY_NOT_RUNNING' || code === 'RESULT_TIMEOUT') return 'keep';
      this.#logger.error('an instance streamed while it arrived could not be sent', { sopInstanceUid: instance.sopInstanceUid, algorithm, ...errorFields(err) });
      return accepted ? 'failed' : 'whole';
    }
  }

  /** The routing attributes once the header is on disk; undefined when the instance is not a native multi-frame run. */
  async #waitForHeader(instance: ArrivingInstance, stored: () => boolean): Promise<Awaited<ReturnType<typeof readInstanceAttributes>> | undefined> {
    const until = performance.now() + HEADER_WAIT_MS;
    let seen = false;
    while (!instance.dropped.aborted && !stored() && performance.now() < until) {
      const start = await readFileStart(instance.path, 4 * 1024 * 1024).catch(() => undefined);
      // Not there yet (the receiver opens it as this starts), or gone: already stored and moved (a small instance is quicker than a look).
      if (start === undefined && seen) return undefined;
      seen ||= start !== undefined;
      try {
        if (start === undefined) {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          continue;
        }
        if (readGrowingHeader(start) !== undefined) return await readInstanceAttributes(instance.path);
      } catch {
        return undefined; // compressed, one frame, not a run: the whole-file path says why
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return undefined;
  }
}
