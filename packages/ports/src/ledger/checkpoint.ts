import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
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

/** Checks record signatures against `trusted`; a malformed signature is simply invalid. */
export function recordVerifier(trusted: KeyObject): (hash: string, signature: string) => boolean {
  return (hash, signature) => {
    try {
      return verify(null, recordMessage(hash), trusted, Buffer.from(signature, 'base64'));
    } catch {
      return false; // not a signature at all: reported by the caller as not the platform key's
    }
  };
}

export const keyIdOf = (publicKey: KeyObject): string => sha256Hex(publicKey.export({ type: 'spki', format: 'der' }).toString('hex')).slice(0, 32);

/** The platform's ledger signing key. */
export class LedgerSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;

  constructor(private readonly privateKey: KeyObject) {
    const publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(publicKey);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  get publicKey(): KeyObject {
    return createPublicKey(this.privateKey);
  }

  /** Signs one chain record's hash. */
  signRecord(hash: string): string {
    return sign(null, recordMessage(hash), this.privateKey).toString('base64');
  }

  /** A verifier for record signatures under this key. */
  get recordVerifier(): (hash: string, signature: string) => boolean {
    return recordVerifier(this.publicKey);
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

/** The public half of a key file (private key PEM) or a public key PEM, for verifiers. */
export async function readTrustedKey(file: string): Promise<KeyObject> {
  const pem = await readFile(file, 'utf8');
  try {
    return pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${file} holds no Ed25519 key: ${(err as Error).message}`, { cause: err });
  }
}
