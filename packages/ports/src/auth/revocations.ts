import { readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ArteriaError, ID_PATTERN, type DeviceAddress } from '@arteria/protocol';

const id = z.string().regex(ID_PATTERN);

/** The revocation list's file name in an embedded installation's data folder and in a cluster's folder. */
export const REVOCATIONS_FILE = 'revoked-devices.json';

/** A revoked device: every credential it holds (token or certificate) is refused until it is reinstated. */
export const RevokedDevice = z.strictObject({
  tenant: id,
  device: id,
  /** When it was revoked (epoch ms). */
  revokedAt: z.number().int().min(0),
  reason: z.string().max(500).optional(),
});
export type RevokedDevice = z.infer<typeof RevokedDevice>;

/** The revocation list file (JSON, mode 0600). */
export const RevocationFile = z.strictObject({ v: z.literal(1), devices: z.array(RevokedDevice) });

/** Answers whether a device is revoked. */
export interface DeviceRevocations {
  revoked(address: DeviceAddress): RevokedDevice | undefined;
}

const key = (address: DeviceAddress): string => `${address.tenant}/${address.device}`;

/** A revocation list held in memory. */
export class RevocationList implements DeviceRevocations {
  readonly #devices: ReadonlyMap<string, RevokedDevice>;

  constructor(devices: readonly RevokedDevice[] = []) {
    this.#devices = new Map(devices.map((d) => [key(d), d]));
  }

  revoked(address: DeviceAddress): RevokedDevice | undefined {
    return this.#devices.get(key(address));
  }

  get size(): number {
    return this.#devices.size;
  }
}

function parseRevocations(text: string, file: string): RevokedDevice[] {
  try {
    return RevocationFile.parse(JSON.parse(text)).devices;
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `revocation list ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export interface WatchedRevocationsOptions {
  /** How often the file is looked at, at most (default 1 s): a revocation applies within this long. */
  checkEveryMs?: number;
  /** A file that became unreadable or invalid: the last good list stays in force. */
  onError?: (error: ArteriaError) => void;
  now?: () => number;
}

/**
 * The revocation list in a file that `arteria device revoke` (or `cluster device revoke`)
 * rewrites: read at start, then reread when it changes (a stat at most once per
 * `checkEveryMs`, on the next check). A missing file is an empty list. A file that turns
 * bad never lifts a revocation: the last good list stays in force and the error is reported.
 */
export class WatchedRevocations implements DeviceRevocations {
  readonly #file: string;
  readonly #every: number;
  readonly #onError: ((error: ArteriaError) => void) | undefined;
  readonly #now: () => number;
  #list = new RevocationList();
  #version = '';
  #checkedAt = Number.NEGATIVE_INFINITY;

  constructor(file: string, options: WatchedRevocationsOptions = {}) {
    this.#file = file;
    this.#every = options.checkEveryMs ?? 1000;
    this.#onError = options.onError;
    this.#now = options.now ?? Date.now;
    // A list that cannot be read at start is a configuration error, not a silent empty list.
    this.#refresh(true);
  }

  revoked(address: DeviceAddress): RevokedDevice | undefined {
    const now = this.#now();
    if (now - this.#checkedAt >= this.#every) this.#refresh(false);
    return this.#list.revoked(address);
  }

  #refresh(strict: boolean): void {
    this.#checkedAt = this.#now();
    try {
      let version: string;
      try {
        const info = statSync(this.#file);
        version = `${info.ino}:${info.mtimeMs}:${info.size}`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        version = 'missing';
      }
      if (version === this.#version) return;
      const devices = version === 'missing' ? [] : parseRevocations(readFileSync(this.#file, 'utf8'), this.#file);
      this.#list = new RevocationList(devices);
      this.#version = version;
    } catch (err) {
      const error = err instanceof ArteriaError ? err : new ArteriaError('CONFIG_INVALID', `revocation list ${this.#file} cannot be read: ${(err as Error).message}`, { cause: err });
      if (strict) throw error;
      this.#onError?.(error);
    }
  }
}

/** The devices a revocation list file names (none when it does not exist). */
export async function readRevocationFile(file: string): Promise<RevokedDevice[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ArteriaError('CONFIG_INVALID', `revocation list ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  return parseRevocations(text, file);
}

/** Replaces the file whole (write, then rename), mode 0600, so a reader sees the old list or the new one. */
async function writeRevocationFile(file: string, devices: readonly RevokedDevice[]): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ v: 1, devices }, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/** Adds a device to the list (a device already on it keeps its first revocation); returns its entry. */
export async function revokeDevice(file: string, address: DeviceAddress, reason?: string, now: number = Date.now()): Promise<RevokedDevice> {
  const devices = await readRevocationFile(file);
  const existing = devices.find((d) => key(d) === key(address));
  if (existing !== undefined) return existing;
  const entry: RevokedDevice = { tenant: address.tenant, device: address.device, revokedAt: now, ...(reason === undefined ? {} : { reason }) };
  await writeRevocationFile(file, [...devices, entry]);
  return entry;
}

/** Takes a device off the list; returns whether it was on it. */
export async function reinstateDevice(file: string, address: DeviceAddress): Promise<boolean> {
  const devices = await readRevocationFile(file);
  const kept = devices.filter((d) => key(d) !== key(address));
  if (kept.length === devices.length) return false;
  await writeRevocationFile(file, kept);
  return true;
}
