import { createHmac, randomBytes } from 'node:crypto';
import { chmod, open, readFile } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';

const KEY_BYTES = 32;

/**
 * The site's de-identification secret. It never leaves the site: UIDs and date offsets are
 * keyed hashes of it, so the same original always maps to the same pseudonym here, and
 * nobody without the key can compute or reverse the mapping.
 */
export class DeidentificationKey {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.byteLength < 16) throw new ArteriaError('CONFIG_INVALID', `a de-identification key needs at least 16 bytes, got ${key.byteLength}`);
    this.#key = Buffer.from(key);
  }

  /** Reads the key file, creating it (32 random bytes, mode 0600) when it does not exist yet. */
  static async loadOrCreate(path: string): Promise<DeidentificationKey> {
    try {
      return new DeidentificationKey(await readFile(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ArteriaError('CONFIG_INVALID', `cannot read the de-identification key ${path}: ${(err as Error).message}`, { cause: err });
    }
    const key = randomBytes(KEY_BYTES);
    const file = await open(path, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return undefined; // another process created it first: use theirs
      throw err;
    });
    if (file === undefined) return new DeidentificationKey(await readFile(path));
    try {
      await file.writeFile(key);
      await file.sync();
    } finally {
      await file.close();
    }
    await chmod(path, 0o600);
    return new DeidentificationKey(key);
  }

  /** A stable pseudonymous UID: `2.25.` and the first 128 bits of HMAC-SHA256(key, uid) (PS3.5 B.2). */
  uid(original: string): string {
    const digest = createHmac('sha256', this.#key).update(`uid:${original}`).digest();
    return `2.25.${BigInt(`0x${digest.subarray(0, 16).toString('hex')}`).toString(10)}`;
  }

  /** The key that encrypts the re-identification store (derived: it never equals the UID key). */
  storeKey(): Buffer {
    return createHmac('sha256', this.#key).update('reidentification-store:v1').digest();
  }

  /** Days every date of one patient moves back: 1..3650, the same for all their studies. */
  dateShiftDays(patientKey: string): number {
    const digest = createHmac('sha256', this.#key).update(`date:${patientKey}`).digest();
    return (digest.readUInt32BE(0) % 3650) + 1;
  }
}
