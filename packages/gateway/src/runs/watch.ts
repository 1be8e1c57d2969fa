import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { ArteriaError, epochNow, toArteriaError } from '@arteria/protocol';
import type { Gateway } from '../gateway.js';
import type { GatewayResult } from '../types.js';
import { errorFields, stderrLogger, type GatewayLogger } from '../log.js';
import { listFolderFiles, looksLikeRun } from './folder-files.js';
import { seriesFolderName, singleFrameSeriesOf, writeSeriesRun } from './series-run.js';

export interface FolderWatcherOptions {
  folder: string;
  /** A file is sent once its size and modification time stayed the same this long (the modality may still be writing it). */
  stableMs?: number;
  pollIntervalMs?: number;
  /** Algorithm for the runs of this folder; default: the gateway's. */
  algorithm?: string;
  logger?: GatewayLogger;
  /**
   * Each answer, under the name the site knows: the file's path within the folder, or for frames sent as one run
   * `series {SeriesInstanceUID} ({n} single frames)`. (The gateway's `result` event names the
   * run's de-identified copy instead: the original's path, which may name the patient, never
   * enters the outbox.)
   */
  onResult?: (answer: { name: string; files: string[]; result: GatewayResult }) => void;
}

interface Seen {
  size: number;
  mtimeMs: number;
  since: number;
}

/** Single frames of one series, stable, waiting for the series to go quiet. */
interface PendingSeries {
  names: string[];
  /** When the last frame joined. */
  since: number;
}

/**
 * Watched-folder intake: every new `.dcm` file in `folder` or its subfolders (and every file
 * without that extension that is a DICOM Part 10 file, as exports often name them; never
 * DICOMDIR; see listFolderFiles) is sent through the gateway, then moved to the same place
 * under `sent/` (with `{name}.result.json`) or `failed/` (with `{name}.error.json`): a media
 * export's `DICOM/PAT1/STU1/SER1/IM1` goes to `sent/DICOM/PAT1/STU1/SER1/IM1`. Subfolders
 * emptied so are left in place, since an export may still be writing into them. Polling
 * rather than inotify: it works on network shares and
 * sees files that arrived while the gateway was down. A file whose run is still in the
 * outbox when the gateway closes stays where it is; after a restart it joins its
 * resumed run instead of starting a second one.
 *
 * A modality that exports a run frame by frame writes one single-frame file per frame. Such
 * files of one series are held until no frame has joined for `stableMs`, then made into one
 * multi-frame run (in `.series/`, named after its frames, so a restart makes the same run)
 * and sent once; the frames then move together to `sent/{series}/` (or `failed/{series}/`)
 * with `{series}.result.json` beside it.
 */
export class FolderWatcher {
  readonly #gateway: Gateway;
  readonly #folder: string;
  readonly #stableMs: number;
  readonly #pollIntervalMs: number;
  readonly #algorithm: string | undefined;
  readonly #logger: GatewayLogger;
  readonly #onResult: FolderWatcherOptions['onResult'];
  readonly #seen = new Map<string, Seen>();
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Stable single frames by Series Instance UID, and the series of each such file. */
  readonly #series = new Map<string, PendingSeries>();
  readonly #seriesOf = new Map<string, string>();
  /** Files without the .dcm extension found not to be DICOM, at the size and time they had then. */
  readonly #notDicom = new Map<string, { size: number; mtimeMs: number }>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #state: 'created' | 'running' | 'closed' = 'created';

  constructor(gateway: Gateway, options: FolderWatcherOptions) {
    for (const [name, value] of [['stableMs', options.stableMs], ['pollIntervalMs', options.pollIntervalMs]] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
        throw new ArteriaError('CONFIG_INVALID', `watched folder option ${name} must be a non-negative integer, got ${value}`);
      }
    }
    this.#gateway = gateway;
    this.#folder = options.folder;
    this.#stableMs = options.stableMs ?? 2000;
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
    this.#algorithm = options.algorithm;
    this.#logger = options.logger ?? stderrLogger;
    this.#onResult = options.onResult;
  }

  get sentFolder(): string {
    return join(this.#folder, 'sent');
  }

  get failedFolder(): string {
    return join(this.#folder, 'failed');
  }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new ArteriaError('CONFIG_INVALID', 'a FolderWatcher starts once');
    try {
      await mkdir(this.sentFolder, { recursive: true });
      await mkdir(this.failedFolder, { recursive: true });
    } catch (err) {
      // A path that is a file, or a folder this user cannot write: the configuration's to mend.
      throw new ArteriaError('CONFIG_INVALID', `the watched folder ${this.#folder} cannot be used: ${(err as Error).message}`, { cause: err });
    }
    this.#state = 'running';
    this.#schedule(0);
  }

  /** Resolves once no file of this folder is on its way (for orderly shutdowns and tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight.values());
  }

  /**
   * Stops looking for new files. Runs already handed to the gateway go on; their files
   * are still moved when they finish. Idempotent.
   */
  async close(): Promise<void> {
    this.#state = 'closed';
    clearTimeout(this.#timer);
    await this.#polling;
  }

  #schedule(delayMs: number): void {
    if (this.#state !== 'running') return;
    this.#timer = setTimeout(() => {
      this.#polling = this.#poll()
        .catch((err: unknown) => this.#logger.warn('cannot read the watched folder', { folder: this.#folder, ...errorFields(err) }))
        .finally(() => this.#schedule(this.#pollIntervalMs));
    }, delayMs);
  }

  async #poll(): Promise<void> {
    // Names are paths relative to the folder ('DICOM/PAT1/IM1'); the folder's own sent/ and failed/ are not looked into.
    const names = await listFolderFiles(this.#folder, { skipTopLevel: ['sent', 'failed'] });
    const now = epochNow();
    const present = new Set<string>();
    for (const name of names) {
      if (this.#state !== 'running') return;
      if (this.#inFlight.has(name)) continue;
      present.add(name);
      if (this.#seriesOf.has(name)) continue; // a stable frame, waiting for its series
      let info: { size: number; mtimeMs: number };
      try {
        info = await stat(join(this.#folder, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // moved away meanwhile
        throw err;
      }
      const other = this.#notDicom.get(name);
      if (other !== undefined && other.size === info.size && other.mtimeMs === info.mtimeMs) continue;
      const seen = this.#seen.get(name);
      if (seen === undefined || seen.size !== info.size || seen.mtimeMs !== info.mtimeMs) {
        this.#seen.set(name, { size: info.size, mtimeMs: info.mtimeMs, since: now });
        continue;
      }
      if (now - seen.since < this.#stableMs) continue;
      this.#seen.delete(name);
      // Exports often name files without an extension (IM000001): those go when they are Part 10 files.
      if (!(await looksLikeRun(join(this.#folder, name)))) {
        this.#notDicom.set(name, info);
        continue;
      }
      const series = await singleFrameSeriesOf(join(this.#folder, name));
      if (series === undefined) this.#dispatch([name], this.#sendFile(name));
      else this.#join(series, name, now);
    }
    for (const name of this.#seen.keys()) if (!present.has(name)) this.#seen.delete(name);
    for (const name of this.#notDicom.keys()) if (!present.has(name)) this.#notDicom.delete(name);
    if (this.#state !== 'running') return;
    for (const [uid, pending] of this.#series) {
      const names = pending.names.filter((n) => present.has(n));
      if (names.length === pending.names.length && now - pending.since < this.#stableMs) continue;
      if (names.length < pending.names.length) {
        // A frame moved away while the series waited: wait again for what is left, if anything.
        for (const n of pending.names) if (!present.has(n)) this.#seriesOf.delete(n);
        if (names.length === 0) this.#series.delete(uid);
        pending.names = names;
        pending.since = now;
        continue;
      }
      this.#series.delete(uid);
      for (const n of names) this.#seriesOf.delete(n);
      if (names.length === 1) this.#dispatch(names, this.#sendFile(names[0]!));
      else this.#dispatch(names, this.#sendSeries(uid, names));
    }
  }

  #join(uid: string, name: string, now: number): void {
    const pending = this.#series.get(uid) ?? { names: [], since: now };
    pending.names.push(name);
    pending.since = now;
    this.#series.set(uid, pending);
    this.#seriesOf.set(name, uid);
  }

  /** Marks the files as on their way until `work` settles. */
  #dispatch(names: readonly string[], work: Promise<void>): void {
    const done = work
      .catch((err: unknown) => this.#logger.error('cannot move files out of the watched folder', { folder: this.#folder, files: names.join(', '), ...errorFields(err) }))
      .finally(() => {
        for (const name of names) this.#inFlight.delete(name);
      });
    for (const name of names) this.#inFlight.set(name, done);
  }

  async #sendFile(name: string): Promise<void> {
    const path = join(this.#folder, name);
    this.#logger.info('sending a file from the watched folder', { path });
    let result: GatewayResult;
    try {
      result = await this.#gateway.send(path, this.#sendOptions());
    } catch (err) {
      const error = toArteriaError(err);
      // The run stays in the outbox; the file stays here, and is sent again (joining that run) next time.
      if (stillOnItsWay(error, this.#logger, path)) return;
      this.#logger.warn('a file from the watched folder failed', { path, ...errorFields(error) });
      await this.#finish(name, 'failed', '.error.json', errorReport(error));
      return;
    }
    await this.#finish(name, 'sent', '.result.json', result);
    this.#onResult?.({ name, files: [name], result });
  }

  /**
   * Sends single frames of one series as the one run they make; frames that cannot make one
   * (different sizes or syntaxes) go one by one, each refused or taken on its own.
   */
  async #sendSeries(uid: string, names: readonly string[]): Promise<void> {
    let run: string;
    try {
      run = await writeSeriesRun(names.map((n) => join(this.#folder, n)), join(this.#folder, '.series'));
    } catch (err) {
      this.#logger.warn('single frames of a series could not be made into one run; they go one by one', { folder: this.#folder, series: uid, frames: names.length, ...errorFields(err) });
      await Promise.all(names.map((name) => this.#sendFile(name)));
      return;
    }
    this.#logger.info('sending single frames of a series from the watched folder as one run', { folder: this.#folder, series: uid, frames: names.length, run });
    let result: GatewayResult;
    try {
      result = await this.#gateway.send(run, this.#sendOptions());
    } catch (err) {
      const error = toArteriaError(err);
      if (stillOnItsWay(error, this.#logger, run)) return; // as for a file: the frames stay, and make the same run next time
      this.#logger.warn('a series from the watched folder failed', { folder: this.#folder, series: uid, ...errorFields(error) });
      await this.#finishSeries(uid, names, 'failed', '.error.json', errorReport(error));
      await rm(run, { force: true });
      return;
    }
    await this.#finishSeries(uid, names, 'sent', '.result.json', result);
    await rm(run, { force: true });
    this.#onResult?.({ name: `series ${uid} (${names.length} single frames)`, files: [...names], result });
  }

  #sendOptions(): { algorithm?: string } {
    return this.#algorithm === undefined ? {} : { algorithm: this.#algorithm };
  }

  /** Moves a series' frames into one folder under `sent/` or `failed/`, the report beside it. */
  async #finishSeries(uid: string, names: readonly string[], to: 'sent' | 'failed', reportSuffix: string, report: GatewayResult | object): Promise<void> {
    const target = await this.#freeName(to === 'sent' ? this.sentFolder : this.failedFolder, seriesFolderName(uid, names));
    const folder = join(to === 'sent' ? this.sentFolder : this.failedFolder, target);
    await mkdir(folder);
    for (const name of names) {
      // Frames keep their place below the series' folder, so that two named alike in different subfolders stay apart.
      await mkdir(dirname(join(folder, name)), { recursive: true });
      await rename(join(this.#folder, name), join(folder, name));
    }
    await writeFile(`${folder}${reportSuffix}`, `${JSON.stringify(report, null, 2)}\n`);
  }

  /** `name`, or `{now}-{name}` when `folder` has one already: never overwrite an earlier file. */
  async #freeName(folder: string, name: string): Promise<string> {
    try {
      await stat(join(folder, name));
      return `${Date.now()}-${name}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return name;
    }
  }

  /** Moves the file to its place under `sent/` or `failed/` and writes the report beside it. */
  async #finish(name: string, to: 'sent' | 'failed', reportSuffix: string, report: GatewayResult | object): Promise<void> {
    const folder = join(to === 'sent' ? this.sentFolder : this.failedFolder, posix.dirname(name));
    await mkdir(folder, { recursive: true });
    const targetName = await this.#freeName(folder, posix.basename(name));
    await rename(join(this.#folder, name), join(folder, targetName));
    await writeFile(join(folder, `${targetName}${reportSuffix}`), `${JSON.stringify(report, null, 2)}\n`);
  }
}

/**
 * The gateway closed, or the answer is later than resultTimeoutMs: either way the run is in
 * the outbox and will be answered. Its files stay where they are; the next look at the folder
 * (or the next start) sends them again, which joins that run or gets its answer, so a slow
 * platform never moves a file to failed/ that is then answered.
 */
function stillOnItsWay(error: ArteriaError, logger: GatewayLogger, path: string): boolean {
  if (error.code === 'RESULT_TIMEOUT') logger.warn('no answer yet for a run from the watched folder; it stays, and is waited for again', { path, ...errorFields(error) });
  return error.code === 'GATEWAY_NOT_RUNNING' || error.code === 'RESULT_TIMEOUT';
}

function errorReport(error: ArteriaError): object {
  return { ...error.toJSON(), retryable: error.retryable, at: new Date().toISOString() };
}
