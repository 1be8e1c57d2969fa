import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError, sha256Hex } from '@arteria/protocol';

/**
 * A signed checkpoint: the platform's Ed25519 key vouches that the chain's record `seq`
 * had hash `hash` at `signedAt`. Whoever edits the ledger file without the key cannot
 * make a matching checkpoint, so records up to the newest checkpoint cannot be changed,
 * removed or reordered unnoticed, the tail included.
 */
export interface Checkpoint {
  seq: number;
  hash: string;
  /** Epoch ms. */
  signedAt: number;
  /** sha256 of the public key (SPKI DER), first 32 hex digits. */
  keyId: string;
  /** SPKI PEM of the signing key, so a verifier can name a key it does not trust. */
  publicKey: string;
  /** base64 Ed25519 signature over checkpointMessage. */
  signature: string;
}

const checkpointMessage = (c: Pick<Checkpoint, 'seq' | 'hash' | 'signedAt'>): Buffer =>
  Buffer.from(`arteria-ledger-checkpoint/1\n${c.seq}\n${c.hash}\n${c.signedAt}`);

const recordMessage = (hash: string): Buffer => Buffer.from(`arteria-ledger-record/1\n${hash}`);

/**
 * How often the SQLite ledger signs a checkpoint of its head when it moved. Its records are
 * sealed with MACs, which the public key cannot check: until a checkpoint covers them, an audit with the
 * public key alone cannot tell them from records someone with write access to the store
 * added (the platform's own lookups and an audit with the private key can). This bounds that
 * window; one Ed25519 signature per interval costs nothing measurable.
 */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000;

/** How a record's seal (ChainRecord.signature) reads when it is a MAC rather than an Ed25519 signature. */
export const RECORD_MAC_PREFIX = 'hmac-sha256:';

/**
 * Checks one record's seal: true or false, or undefined when this checker cannot tell (a
 * MAC, and only the public key at hand).
 */
export type RecordSealCheck = (hash: string, seal: string) => boolean | undefined;

/**
 * The key of the records' MACs, derived from the ledger's private key: whoever can make
 * checkpoints can make MACs, and nobody else (the public key does not give it).
 */
export const recordMacKeyOf = (privateKey: KeyObject): Buffer =>
  createHmac('sha256', privateKey.export({ type: 'pkcs8', format: 'der' })).update('arteria-ledger-record-mac/1').digest();

const recordMac = (macKey: Buffer, hash: string): Buffer => createHmac('sha256', macKey).update(recordMessage(hash)).digest();

/**
 * Checks record seals against `trusted`: Ed25519 signatures (records written before the
 * records were sealed with MACs) always, MACs only with `macKey` (from the private key).
 * A malformed seal is simply invalid.
 */
export function recordVerifier(trusted: KeyObject, macKey?: Buffer): RecordSealCheck {
  return (hash, seal) => {
    if (seal.startsWith(RECORD_MAC_PREFIX)) {
      if (macKey === undefined) return undefined;
      const given = Buffer.from(seal.slice(RECORD_MAC_PREFIX.length), 'base64');
      const expected = recordMac(macKey, hash);
      return given.length === expected.length && timingSafeEqual(given, expected);
    }
    try {
      return verify(null, recordMessage(hash), trusted, Buffer.from(seal, 'base64'));
    } catch {
      return false; // not a signature at all: reported by the caller as not the platform key's
    }
  };
}

export const keyIdOf = (publicKey: KeyObject): string => sha256Hex(publicKey.export({ type: 'spki', format: 'der' }).toString('hex')).slice(0, 32);

/**
 * The platform's ledger signing key. The SQLite ledger seals its records with an
 * HMAC-SHA-256 under a key derived from it (a few microseconds, where an Ed25519 signature
 * cost about 0.1 ms of the platform's CPU per record, two per request); checkpoints, which
 * commit to every record up to theirs through the chain's links, are Ed25519-signed, so the
 * public key verifies the chain up to the newest checkpoint and the private key verifies
 * every record. The NATS ledger signs each record (Ed25519) as well.
 */
export class LedgerSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;
  readonly #macKey: Buffer;

  constructor(private readonly privateKey: KeyObject) {
    const publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(publicKey);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.#macKey = recordMacKeyOf(privateKey);
  }

  get publicKey(): KeyObject {
    return createPublicKey(this.privateKey);
  }

  /** Signs one chain record's hash (Ed25519, base64): the NATS ledger's records. */
  signRecord(hash: string): string {
    return sign(null, recordMessage(hash), this.privateKey).toString('base64');
  }

  /** Seals one chain record's hash with its MAC (`hmac-sha256:<base64>`): the SQLite ledger's records. */
  sealRecord(hash: string): string {
    return `${RECORD_MAC_PREFIX}${recordMac(this.#macKey, hash).toString('base64')}`;
  }

  /** A verifier for record seals under this key: MACs and older records' signatures (never undefined). */
  get recordVerifier(): (hash: string, signature: string) => boolean {
    const check = recordVerifier(this.publicKey, this.#macKey);
    return (hash, signature) => check(hash, signature) === true;
  }

  sign(seq: number, hash: string, signedAt: number): Checkpoint {
    const signature = sign(null, checkpointMessage({ seq, hash, signedAt }), this.privateKey).toString('base64');
    return { seq, hash, signedAt, keyId: this.keyId, publicKey: this.publicKeyPem, signature };
  }
}

/** Why a checkpoint cannot be trusted under `trusted`; undefined when its signature holds. */
export function checkpointDefect(c: Checkpoint, trusted: KeyObject): string | undefined {
  if (c.keyId !== keyIdOf(trusted)) return `signed by key ${c.keyId}, not the platform's key ${keyIdOf(trusted)}`;
  let ok = false;
  try {
    ok = verify(null, checkpointMessage(c), trusted, Buffer.from(c.signature, 'base64'));
  } catch (err) {
    return `signature unreadable: ${(err as Error).message}`;
  }
  return ok ? undefined : 'signature does not match its seq, hash and time';
}

export const LEDGER_KEY_FILE = 'ledger-signing-key.pem';

/**
 * Reads the platform's Ed25519 key from `file`, creating it (mode 0600, never
 * overwritten) when it does not exist. Processes sharing one ledger share this file.
 */
export async function loadOrCreateLedgerSigner(file: string): Promise<LedgerSigner> {
  try {
    return new LedgerSigner(createPrivateKey(await readFile(file, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ArteriaError('CONFIG_INVALID', `ledger signing key ${file} is not readable as an Ed25519 private key: ${(err as Error).message}`, { cause: err });
    }
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  await mkdir(path.dirname(file), { recursive: true });
  // Written whole under a name of its own, then linked into place: link fails when the file
  // exists, so two processes starting at once never replace each other's key, and neither
  // ever reads a key file still being written.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(draft, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    await chmod(draft, 0o600);
    await link(draft, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return new LedgerSigner(createPrivateKey(await readFile(file, 'utf8')));
  } finally {
    await rm(draft, { force: true });
  }
  return new LedgerSigner(privateKey);
}

/**
 * What `arteria audit` checks with: the public key, and the records' MAC key when the file
 * holds the private key (a public key PEM checks the records through the checkpoints only).
 */
export async function readAuditKeys(file: string): Promise<{ trusted: KeyObject; macKey?: Buffer }> {
  const pem = await readFile(file, 'utf8');
  if (!pem.includes('PRIVATE KEY')) return { trusted: await readTrustedKey(file) };
  try {
    const privateKey = createPrivateKey(pem);
    return { trusted: createPublicKey(privateKey), macKey: recordMacKeyOf(privateKey) };
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${file} holds no Ed25519 key: ${(err as Error).message}`, { cause: err });
  }
}

/** The public half of a key file (private key PEM) or a public key PEM, for verifiers. */
export async function readTrustedKey(file: string): Promise<KeyObject> {
  const pem = await readFile(file, 'utf8');
  try {
    return pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${file} holds no Ed25519 key: ${(err as Error).message}`, { cause: err });
  }
}
