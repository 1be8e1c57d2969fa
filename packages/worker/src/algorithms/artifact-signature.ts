import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';

/**
 * Signatures of algorithm artifacts. An operator's Ed25519 key vouches for one packed
 * version: its archive (the bytes that travel) and its content digest (the digest the
 * registry computes over what runs: manifest, code, model). The registry checks the
 * second one against the installed files, so a signature covers the code that runs,
 * not only the archive it came in.
 */
export const SIGNATURE_FORMAT = 'arteria-artifact-signature/v1';
/** Name of the signature beside an installed artifact's manifest.json. */
export const SIGNATURE_FILE = 'signature.json';

const Sha256Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');

export const ArtifactSignature = z.strictObject({
  format: z.literal(SIGNATURE_FORMAT),
  /** `name@version` of the algorithm. */
  algorithm: z.string().min(3).max(200),
  /** SHA-256 of the artifact archive. */
  archiveDigest: Sha256Digest,
  /** The registry's artifact digest of the files inside (what every result names). */
  contentDigest: Sha256Digest,
  /** publicKeyId() of the signing key. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  /** base64 Ed25519 signature over signedMessage(). */
  signature: z.string().min(1).max(200),
});
export type ArtifactSignature = z.infer<typeof ArtifactSignature>;

export type SignedStatement = Pick<ArtifactSignature, 'algorithm' | 'archiveDigest' | 'contentDigest'>;

/** Exactly the bytes the key signs: every field that says what is vouched for, one per line. */
function signedMessage(statement: SignedStatement): Buffer {
  return Buffer.from(`${SIGNATURE_FORMAT}\n${statement.algorithm}\n${statement.archiveDigest}\n${statement.contentDigest}\n`, 'utf8');
}

/** First 16 hex digits of the SHA-256 of the key's SPKI DER: how signatures name their key. */
export function publicKeyId(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

function assertEd25519(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ed25519') throw new ArteriaError('CONFIG_INVALID', `${what} is a ${key.asymmetricKeyType ?? 'symmetric'} key; artifact signatures use Ed25519`);
}

export function signArtifact(statement: SignedStatement, privateKey: KeyObject): ArtifactSignature {
  assertEd25519(privateKey, 'the signing key');
  const signature = sign(null, signedMessage(statement), privateKey).toString('base64');
  return { format: SIGNATURE_FORMAT, ...statement, keyId: publicKeyId(privateKey), signature };
}

/** Parses a signature file's JSON; ARTIFACT_SIGNATURE_INVALID when it is not one. */
export function parseArtifactSignature(json: unknown, source: string): ArtifactSignature {
  const parsed = ArtifactSignature.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${source}: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'is invalid'}`);
  }
  return parsed.data;
}

/**
 * Checks the signature against the trusted keys; returns the key id that made it.
 * ARTIFACT_SIGNATURE_INVALID when no trusted key has that id or the signature does not
 * verify over the statement (the statement changed, or the signature was forged).
 */
export function verifyArtifactSignature(signature: ArtifactSignature, trusted: readonly KeyObject[]): string {
  const key = trusted.find((k) => publicKeyId(k) === signature.keyId);
  if (!key) {
    const known = trusted.map(publicKeyId).join(', ') || 'none';
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${signature.algorithm} is signed by key ${signature.keyId}, which is not trusted here (trusted: ${known})`);
  }
  const ok = verify(null, signedMessage(signature), key, Buffer.from(signature.signature, 'base64'));
  if (!ok) throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${signature.algorithm}: the signature by key ${signature.keyId} does not match what it claims to sign`);
  return signature.keyId;
}

async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${what} ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** An Ed25519 public key (SPKI PEM); a private key file is accepted and its public half used. */
export async function readPublicKey(file: string): Promise<KeyObject> {
  const pem = await readPem(file, 'public key');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${file} holds no public key: ${(err as Error).message}`, { cause: err });
  }
  assertEd25519(key, file);
  return key;
}

export async function readPrivateKey(file: string): Promise<KeyObject> {
  const pem = await readPem(file, 'signing key');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ArteriaError('CONFIG_INVALID', `${file} holds no private key: ${(err as Error).message}`, { cause: err });
  }
  assertEd25519(key, file);
  return key;
}

/** What the registry accepts: whose signatures count, and whether an unsigned version may run at all. */
export interface ArtifactTrust {
  /** Keys whose signatures are accepted. */
  readonly publicKeys: readonly KeyObject[];
  /** Refuse every version without a valid signature (ARTIFACT_UNSIGNED). Default false. */
  readonly requireSignatures?: boolean;
}

/** What operators configure: public key files, and whether unsigned versions are refused. */
export const ArtifactTrustOptions = z.strictObject({
  /** Ed25519 public keys (SPKI PEM, from `arteria algorithm keygen`) whose signatures count. */
  publicKeyFiles: z.array(z.string().min(1)).max(64).default([]),
  /** Refuse to load any algorithm version without a valid signature by one of them. */
  requireSignatures: z.boolean().default(false),
});
export type ArtifactTrustOptions = z.input<typeof ArtifactTrustOptions>;

/** The registry's trust from configuration; undefined when nothing is configured. */
export async function loadArtifactTrust(options: z.output<typeof ArtifactTrustOptions> | undefined): Promise<ArtifactTrust | undefined> {
  if (options === undefined || (options.publicKeyFiles.length === 0 && !options.requireSignatures)) return undefined;
  const publicKeys = await Promise.all(options.publicKeyFiles.map((f) => readPublicKey(f)));
  return { publicKeys, requireSignatures: options.requireSignatures };
}
