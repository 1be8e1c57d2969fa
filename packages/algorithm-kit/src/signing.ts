/**
 * Operator keys and artifact signatures (Ed25519, node:crypto). The private key stays
 * with whoever releases algorithms; platforms hold only public keys. A signature sits
 * beside its artifact as `<artifact>.sig.json` and, once installed, as the algorithm
 * folder's signature.json, where the registry checks it at every start.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ArteriaError } from '@arteria/protocol';
import { SIGNATURE_FILE, parseArtifactSignature, publicKeyId, readPrivateKey, readPublicKey, signArtifact, verifyArtifactSignature, type ArtifactSignature, assertSafePath } from '@arteria/worker';
import { openArtifact, type ArtifactDescriptor } from './artifact.js';

export const signatureFileFor = (artifact: string): string => `${artifact}.sig.json`;

export interface KeyPairFiles {
  privateKeyFile: string;
  publicKeyFile: string;
  keyId: string;
}

/** Writes `<prefix>.key` (PKCS#8 PEM, mode 0600) and `<prefix>.pub` (SPKI PEM); never overwrites. */
export async function generateSigningKey(prefix: string): Promise<KeyPairFiles> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyFile = `${prefix}.key`;
  const publicKeyFile = `${prefix}.pub`;
  await mkdir(path.dirname(path.resolve(privateKeyFile)), { recursive: true });
  try {
    await writeFile(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ArteriaError('CONFIG_INVALID', `${(err as NodeJS.ErrnoException).path ?? prefix} already exists; keygen never replaces a key`, { cause: err });
    throw err;
  }
  return { privateKeyFile, publicKeyFile, keyId: publicKeyId(publicKey) };
}

/** Signs an artifact (checked whole first); writes and returns `<artifact>.sig.json`. */
export async function signArtifactFile(artifact: string, privateKeyFile: string): Promise<{ file: string; signature: ArtifactSignature }> {
  const key = await readPrivateKey(privateKeyFile);
  const opened = await openArtifact(artifact);
  const signature = signArtifact({ algorithm: opened.descriptor.algorithm, archiveDigest: opened.digest, contentDigest: opened.descriptor.contentDigest }, key);
  const file = signatureFileFor(artifact);
  await writeFile(file, `${JSON.stringify(signature, null, 2)}\n`);
  return { file, signature };
}

export async function readSignatureFile(file: string): Promise<ArtifactSignature> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ArteriaError('ARTIFACT_UNSIGNED', `no signature: ${file} does not exist`, { cause: err });
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${file} is not JSON`, { cause: err });
  }
  return parseArtifactSignature(json, file);
}

export interface VerifiedArtifact {
  descriptor: ArtifactDescriptor;
  digest: string;
  keyId: string;
  signature: ArtifactSignature;
}

/**
 * Checks that `artifact` is exactly what a trusted key signed: the signature verifies,
 * the archive's SHA-256 is the signed one (any changed byte fails), and the content
 * inside gives the signed content digest.
 */
export async function verifyArtifactFile(artifact: string, trusted: readonly KeyObject[], signatureFile = signatureFileFor(artifact)): Promise<VerifiedArtifact> {
  if (trusted.length === 0) throw new ArteriaError('CONFIG_INVALID', 'no public key to verify with (--public-key)');
  const signature = await readSignatureFile(signatureFile);
  const keyId = verifyArtifactSignature(signature, trusted);
  const opened = await openArtifact(artifact).catch((err: unknown) => {
    // A signed artifact that no longer reads as one was changed after signing.
    if (err instanceof ArteriaError && err.code === 'ARTIFACT_INVALID') throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${artifact} changed after it was signed: ${err.message}`, { cause: err });
    throw err;
  });
  if (opened.digest !== signature.archiveDigest) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${artifact} changed after it was signed: it hashes to ${opened.digest}, the signature covers ${signature.archiveDigest}`);
  }
  if (opened.descriptor.contentDigest !== signature.contentDigest || opened.descriptor.algorithm !== signature.algorithm) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${artifact}: the signature is for ${signature.algorithm} ${signature.contentDigest}, the artifact holds ${opened.descriptor.algorithm} ${opened.descriptor.contentDigest}`);
  }
  return { descriptor: opened.descriptor, digest: opened.digest, keyId, signature };
}

export const readPublicKeys = (files: readonly string[]): Promise<KeyObject[]> => Promise.all(files.map((f) => readPublicKey(f)));

export interface InstallOptions {
  artifact: string;
  /** Folder that holds installed algorithms; the version goes into `<name>-<version>-<12 hex>/`. */
  into: string;
  /** Verify against these keys first, and install the signature beside the manifest. */
  publicKeys?: readonly KeyObject[];
  /** Refuse an artifact without a valid signature. */
  requireSignature?: boolean;
}

/**
 * Unpacks an artifact into a folder the platform loads (`--algorithm-dir`, or the
 * cluster's algorithms.dirs). With keys, the signature is verified first and installed
 * as signature.json, which the registry checks again against the installed files.
 */
export async function installArtifact(options: InstallOptions): Promise<{ dir: string; algorithm: string; contentDigest: string; signedBy: string | undefined }> {
  const keys = options.publicKeys ?? [];
  let signedBy: string | undefined;
  let signature: ArtifactSignature | undefined;
  if (keys.length > 0) {
    const verified = await verifyArtifactFile(options.artifact, keys).catch((err: unknown) => {
      if (err instanceof ArteriaError && err.code === 'ARTIFACT_UNSIGNED' && !options.requireSignature) return undefined;
      throw err;
    });
    signedBy = verified?.keyId;
    signature = verified?.signature;
  } else if (options.requireSignature) {
    throw new ArteriaError('CONFIG_INVALID', 'signatures are required but no public key was given to verify with');
  }
  const opened = await openArtifact(options.artifact);
  const { descriptor } = opened;
  const dir = path.join(path.resolve(options.into), `${descriptor.name}-${descriptor.version}-${descriptor.contentDigest.slice(7, 19)}`);
  for (const entry of opened.entries) {
    assertSafePath(entry.path);
    const file = path.join(dir, entry.path);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, entry.bytes);
  }
  if (signature) await writeFile(path.join(dir, SIGNATURE_FILE), `${JSON.stringify(signature, null, 2)}\n`);
  return { dir, algorithm: descriptor.algorithm, contentDigest: descriptor.contentDigest, signedBy };
}
