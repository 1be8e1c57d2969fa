/**
 * The release path of published artifacts: publish an artifact (and its signature) to a
 * platform's artifact store, then move its release record dev → validated → released, or
 * retire it. Each step is signed with the operator's key when one is given; platforms
 * that require signatures load only versions whose artifact and current stage are signed.
 */
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ArteriaError } from '@arteria/protocol';
import { RELEASE_FORMAT, canMoveStage, publicKeyId, withStage, type ArtifactStore, type ReleaseRecord, type ReleaseStage } from '@arteria/worker';
import { openArtifact } from './artifact.js';
import { readSignatureFile, signatureFileFor, verifyArtifactFile } from './signing.js';

export interface PublishOptions {
  artifact: string;
  store: ArtifactStore;
  /** Signs the record's first stage (dev); the artifact's own signature travels if `<artifact>.sig.json` exists. */
  key?: KeyObject | undefined;
  now?: () => Date;
}

export interface PublishResult {
  record: ReleaseRecord;
  /** False when exactly this artifact was already published (nothing changed). */
  created: boolean;
}

async function signatureIfAny(artifact: string): Promise<Awaited<ReturnType<typeof readSignatureFile>> | undefined> {
  return readSignatureFile(signatureFileFor(artifact)).catch((err: unknown) => {
    if (err instanceof ArteriaError && err.code === 'ARTIFACT_UNSIGNED') return undefined;
    throw err;
  });
}

/**
 * Stores the artifact under its digest and a release record in stage dev. The signature
 * beside the artifact, when there is one, is checked against the artifact first (with
 * its own key when `key` signed it) and stored with it. Publishing the same version again
 * with the same artifact changes nothing; with another artifact it is RELEASE_REFUSED:
 * a published version is immutable.
 */
export async function publishArtifact(options: PublishOptions): Promise<PublishResult> {
  const opened = await openArtifact(options.artifact);
  const { descriptor } = opened;
  const signature = await signatureIfAny(options.artifact);
  if (signature !== undefined) {
    if (signature.archiveDigest !== opened.digest || signature.contentDigest !== descriptor.contentDigest || signature.algorithm !== descriptor.algorithm) {
      throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${signatureFileFor(options.artifact)} is for ${signature.algorithm} ${signature.archiveDigest}, not this artifact (${opened.digest})`);
    }
    if (options.key !== undefined && publicKeyId(options.key) === signature.keyId) await verifyArtifactFile(options.artifact, [options.key]);
  }
  const existing = await options.store.getRecord(descriptor.name, descriptor.version);
  if (existing !== undefined) {
    if (existing.archiveDigest !== opened.digest) {
      throw new ArteriaError('RELEASE_REFUSED', `${descriptor.algorithm} is already published as ${existing.archiveDigest}; a published version never changes (publish a new version)`);
    }
    return { record: existing, created: false };
  }
  const archive = await readFile(options.artifact);
  await options.store.putArchive(opened.digest, archive);
  if (signature !== undefined) await options.store.putSignature(signature);
  const base: Omit<ReleaseRecord, 'stage' | 'stageSignature'> = {
    format: RELEASE_FORMAT,
    name: descriptor.name,
    version: descriptor.version,
    archiveDigest: opened.digest,
    contentDigest: descriptor.contentDigest,
    artifactSignedBy: signature?.keyId ?? null,
    history: [],
  };
  const record = withStage(base, 'dev', (options.now ?? (() => new Date()))(), options.key);
  await options.store.putRecord(record);
  return { record, created: true };
}

export interface StageOptions {
  store: ArtifactStore;
  /** `name@version`. */
  algorithm: string;
  to: ReleaseStage;
  key?: KeyObject | undefined;
  now?: () => Date;
}

/** Moves a published version one stage on (or retires it); RELEASE_REFUSED for any other move. */
export async function moveStage(options: StageOptions): Promise<ReleaseRecord> {
  const at = options.algorithm.lastIndexOf('@');
  if (at <= 0) throw new ArteriaError('INVALID_REQUEST', `${options.algorithm}: name a published version as name@version`);
  const name = options.algorithm.slice(0, at);
  const version = options.algorithm.slice(at + 1);
  const record = await options.store.getRecord(name, version);
  if (record === undefined) throw new ArteriaError('RELEASE_REFUSED', `${options.algorithm} is not published in ${options.store.location}`);
  if (!canMoveStage(record.stage, options.to)) {
    throw new ArteriaError('RELEASE_REFUSED', `${options.algorithm} is ${record.stage}; it cannot move to ${options.to} (dev → validated → released, retired from any stage, retired is final)`);
  }
  const next = withStage(record, options.to, (options.now ?? (() => new Date()))(), options.key);
  await options.store.putRecord(next);
  return next;
}

/** One line per published version: name@version, stage, content digest, who signed. */
export function formatReleases(records: readonly ReleaseRecord[]): string {
  if (records.length === 0) return 'nothing published\n';
  return records
    .map((r) => {
      const last = r.history.at(-1);
      const signed = r.artifactSignedBy ? `artifact signed by ${r.artifactSignedBy}` : 'artifact unsigned';
      const stageBy = last?.keyId ? `stage signed by ${last.keyId}` : 'stage unsigned';
      return `${`${r.name}@${r.version}`.padEnd(32)} ${r.stage.padEnd(9)} ${r.contentDigest}  since ${last?.at ?? '?'}  ${signed}, ${stageBy}\n`;
    })
    .join('');
}
