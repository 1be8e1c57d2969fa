import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArteriaError, epochNow, toArteriaError } from '@arteria/protocol';
import type { Gateway } from '../gateway.js';
import type { GatewayResult } from '../types.js';
import { errorFields, stderrLogger, type GatewayLogger } from '../log.js';

export interface FolderWatcherOptions {
  folder: string;
  /** A file is sent once its size and modification time stayed the same this long (the modality may still be writing it). */
  stableMs?: number;
  pollIntervalMs?: number;
  /** Algorithm for the runs of this folder; default: the gateway's. */
  algorithm?: string;
  logger?: GatewayLogger;
}

interface Seen {
  size: number;
  mtimeMs: number;
  since: number;
}

/**
 * Watched-folder intake: every new `.dcm` file in `folder` is sent through the gateway,
 * then moved to `sent/` (with `{name}.result.json`) or `failed/` (with
 * `{name}.error.json`). Polling rather than inotify: it works on network shares and
 * sees files that arrived while the gateway was down. A file whose run is still in the
 * outbox when the gateway closes stays where it is; after a restart it joins its
 * resumed run instead of starting a second one.
 */
export class FolderWatcher {
  readonly #gateway: Gateway;
  readonly #folder: string;
  readonly #stableMs: number;
  readonly #pollIntervalMs: number;
  readonly #algorithm: string | undefined;
  readonly #logger: GatewayLogger;
  readonly #seen = new Map<string, Seen>();
  readonly #inFlight = new Map<string, Promise<void>>();
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
  }

  get sentFolder(): string {
    return join(this.#folder, 'sent');
  }

  get failedFolder(): string {
    return join(this.#folder, 'failed');
  }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new ArteriaError('CONFIG_INVALID', 'a FolderWatcher starts once');
    await mkdir(this.sentFolder, { recursive: true });
    await mkdir(this.failedFolder, { recursive: true });
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
    const entries = await readdir(this.#folder, { withFileTypes: true });
    const now = epochNow();
    const present = new Set<string>();
    for (const entry of entries) {
      if (this.#state !== 'running') return;
      const name = entry.name;
      if (!entry.isFile() || !name.toLowerCase().endsWith('.dcm') || name.startsWith('.') || this.#inFlight.has(name)) continue;
      present.add(name);
      let info: { size: number; mtimeMs: number };
      try {
        info = await stat(join(this.#folder, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // moved away meanwhile
        throw err;
      }
      const seen = this.#seen.get(name);
      if (seen === undefined || seen.size !== info.size || seen.mtimeMs !== info.mtimeMs) {
        this.#seen.set(name, { size: info.size, mtimeMs: info.mtimeMs, since: now });
        continue;
      }
      if (now - seen.since < this.#stableMs) continue;
      this.#seen.delete(name);
      this.#dispatch(name);
    }
    for (const name of this.#seen.keys()) if (!present.has(name)) this.#seen.delete(name);
  }

  #dispatch(name: string): void {
    const path = join(this.#folder, name);
    this.#logger.info('sending a file from the watched folder', { path });
    const done = this.#gateway
      .send(path, this.#algorithm === undefined ? {} : { algorithm: this.#algorithm })
      .then(
        (result) => this.#finish(name, 'sent', '.result.json', result),
        (err: unknown) => {
          const error = toArteriaError(err);
          // The run stays in the outbox; the file stays here for the next start to pick up.
          if (error.code === 'GATEWAY_NOT_RUNNING') return;
          this.#logger.warn('a file from the watched folder failed', { path, ...errorFields(error) });
          return this.#finish(name, 'failed', '.error.json', { ...error.toJSON(), retryable: error.retryable, at: new Date().toISOString() });
        },
      )
      .catch((err: unknown) => this.#logger.error('cannot move a file out of the watched folder', { path, ...errorFields(err) }))
      .finally(() => this.#inFlight.delete(name));
    this.#inFlight.set(name, done);
  }

  /** Moves the file into `sent/` or `failed/` and writes the report beside it. */
  async #finish(name: string, to: 'sent' | 'failed', reportSuffix: string, report: GatewayResult | object): Promise<void> {
    const folder = to === 'sent' ? this.sentFolder : this.failedFolder;
    let targetName = name;
    try {
      await stat(join(folder, targetName));
      targetName = `${Date.now()}-${name}`; // never overwrite an earlier file of the same name
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await rename(join(this.#folder, name), join(folder, targetName));
    await writeFile(join(folder, `${targetName}${reportSuffix}`), `${JSON.stringify(report, null, 2)}\n`);
  }
}
