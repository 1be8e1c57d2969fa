import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ArteriaError } from '@arteria/protocol';
import { errorFields, writeSeriesRun, type Gateway, type GatewayLogger } from '@arteria/gateway';
import { ArrivingStreams } from './arriving.js';
import { DicomReceiver, type DicomReceiverOptions, type ReceivedRun } from './receiver.js';

const OUTBOX_FULL_RETRY_MS = 30_000;

/**
 * Feeds runs the modality stores by C-STORE into the gateway: each multi-frame instance, and
 * each series of single frames made into one run, goes to the algorithms the current routing
 * picks; the received files are removed once every send
 * has its result. A run that cannot be sent (refused by de-identification, not a run)
 * moves to `{folder}.failed/` for the site to look at; it never leaves the site. Files of runs still open when the gateway closes
 * stay on disk and are sent again (joining their runs in the outbox) on the next start.
 */
export class DicomIntake {
  readonly receiver: DicomReceiver;
  readonly #gateway: Gateway;
  readonly #logger: GatewayLogger;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #failedFolder: string;
  /** Where series of single frames are written as one run each, beside the receive folder. */
  readonly #seriesFolder: string;
  readonly #retries = new Set<NodeJS.Timeout>();
  /** Unless streamWhileArriving is false: instances streamed while their C-STORE arrives. */
  readonly #arriving: ArrivingStreams | undefined;
  #closed = false;

  constructor(gateway: Gateway, options: DicomReceiverOptions, logger: GatewayLogger) {
    this.#gateway = gateway;
    this.#failedFolder = `${options.folder}.failed`;
    this.#seriesFolder = `${options.folder}.series`;
    this.#logger = logger;
    // A full outbox refuses new instances at the door: the modality keeps them and can retry.
    const arriving = options.streamWhileArriving === false ? undefined : new ArrivingStreams(gateway, options.folder, logger);
    this.#arriving = arriving;
    this.receiver = new DicomReceiver(
      {
        admit: () => gateway.assertRoom(),
        // What de-identification would refuse is refused at the door, so the modality hears it.
        screen: (instance) => gateway.assertDeidentifiable(instance),
        ...options,
        ...(arriving === undefined ? {} : { onArriving: (instance) => arriving.arriving(instance) }),
      },
      (run) => this.#track(this.#send(run)),
      logger,
    );
  }

  start(): Promise<void> {
    return this.receiver.start();
  }

  /** Stops receiving; waits for nothing (the gateway's close rejects open sends, files stay). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
    await this.receiver.close();
  }

  /** Resolves when every run handed over so far has settled (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * The multi-frame run file of a series of two or more single frames (writeSeriesRun), or
   * undefined: a multi-frame instance is a run already, and frames that cannot make one run
   * (compressed, or of different sizes) go one by one, each refused or taken on its own.
   */
  async #assemble(run: ReceivedRun): Promise<string | undefined> {
    if (run.instances.length < 2 || run.instances.some((i) => i.numberOfFrames !== 1)) return undefined;
    try {
      const path = await writeSeriesRun(run.instances.map((i) => i.path), this.#seriesFolder);
      this.#logger.info('a series of single frames made into one run', { series: run.seriesInstanceUid, frames: run.instances.length });
      return path;
    } catch (err) {
      this.#logger.warn('a series of single frames could not be made into one run; its instances go one by one', { series: run.seriesInstanceUid, instances: run.instances.length, ...errorFields(err) });
      return undefined;
    }
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
  }

  async #send(run: ReceivedRun): Promise<void> {
    this.#logger.info('run received', { series: run.seriesInstanceUid, instances: run.instances.length, from: run.callingAeTitle });
    let keep = false;
    let full = false;
    let failed = false;
    // Instances streamed while they arrived have their runs already (or are to be sent whole after all).
    const arriving = this.#arriving;
    const streamed = arriving === undefined ? [] : await Promise.all(run.instances.map((instance) => arriving.outcome(instance.sopInstanceUid)));
    // A series of single frames goes as the one run its frames make (routed as its first instance).
    const assembled = await this.#assemble(run);
    const sources = assembled === undefined ? run.instances : [{ ...run.instances[0]!, path: assembled }];
    const sends = sources.flatMap((instance, i) =>
      this.#gateway.route(instance).map(async (algorithm) => {
        const outcome = assembled === undefined ? streamed[i]?.get(algorithm) : undefined;
        if (outcome === 'done') return;
        if (outcome === 'keep') {
          keep = true;
          return;
        }
        if (outcome === 'failed') {
          failed = true;
          return;
        }
        try {
          await this.#gateway.send(instance.path, { algorithm });
        } catch (err) {
          // Closing, or waiting too long: the run is in the outbox and the file rejoins it next time.
          if (err instanceof ArteriaError && (err.code === 'GATEWAY_NOT_RUNNING' || err.code === 'RESULT_TIMEOUT')) keep = true;
          else if (err instanceof ArteriaError && err.code === 'OUTBOX_FULL') full = true;
          else {
            failed = true;
            this.#logger.error('a received instance could not be sent', { path: instance.path, algorithm, ...errorFields(err) });
          }
        }
      }),
    );
    await Promise.all(sends);
    if (full && !this.#closed) {
      // Filled up after the instances were admitted: offer the run again later (sends that went through join their runs).
      this.#logger.warn('outbox full; the received run is offered again later', { series: run.seriesInstanceUid, retryMs: OUTBOX_FULL_RETRY_MS });
      const timer = setTimeout(() => {
        this.#retries.delete(timer);
        this.#track(this.#send(run));
      }, OUTBOX_FULL_RETRY_MS);
      this.#retries.add(timer);
      return;
    }
    if (keep || full) return;
    // The assembled file first: instances left by a crash in between make the same file again.
    if (assembled !== undefined) await rm(assembled, { force: true });
    // Only this run's files: more instances of the series may have arrived in its folder since.
    if (failed) {
      const kept = join(this.#failedFolder, `${basename(run.folder)}-${Date.now()}`);
      await mkdir(kept, { recursive: true });
      for (const instance of run.instances) await rename(instance.path, join(kept, basename(instance.path)));
    } else {
      for (const instance of run.instances) await rm(instance.path, { force: true });
    }
    await rmdir(run.folder).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'ENOENT') throw err;
    });
  }
}
