import { sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import { publicKeyId } from './artifact-signature.js';

/**
 * Where one published algorithm version stands on its release path. dev: stored, run by
 * nobody; validated: reviewed, loadable where a deployment asks for validated versions
 * (a staging cluster); released: loaded by every platform process that reads the store,
 * and run for whoever the entitlements give it to; retired: loaded nowhere again.
 */
export const RELEASE_STAGES = ['dev', 'validated', 'released', 'retired'] as const;
export type ReleaseStage = (typeof RELEASE_STAGES)[number];
export const RELEASE_FORMAT = 'arteria-algorithm-release/v1';

const Sha256Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');

const StageChange = z.strictObject({
  stage: z.enum(RELEASE_STAGES),
  /** ISO 8601 time of the change. */
  at: z.string().datetime(),
  /** Key that signed the change; null: made without a key. */
  keyId: z.string().regex(/^[0-9a-f]{16}$/).nullable(),
});

/**
 * The artifact store's record of one version: which artifact (by archive and content
 * digest), its stage, every stage change, and the operator's signature over the current
 * stage, so a record edited in the bucket without the key no longer verifies.
 */
export const ReleaseRecord = z.strictObject({
  format: z.literal(RELEASE_FORMAT),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
  version: z.string().min(1).max(64),
  archiveDigest: Sha256Digest,
  /** What every result of this version names (`algorithm.digest`). */
  contentDigest: Sha256Digest,
  /** Key id of the artifact's own signature, when one was published with it. */
  artifactSignedBy: z.string().regex(/^[0-9a-f]{16}$/).nullable(),
  stage: z.enum(RELEASE_STAGES),
  history: z.array(StageChange).min(1).max(1_000),
  /** base64 Ed25519 signature over stageStatement(); null: the stage change was not signed. */
  stageSignature: z.string().min(1).max(200).nullable(),
});
export type ReleaseRecord = z.infer<typeof ReleaseRecord>;

const NEXT: Readonly<Record<ReleaseStage, readonly ReleaseStage[]>> = {
  dev: ['validated', 'retired'],
  validated: ['released', 'retired'],
  released: ['retired'],
  retired: [],
};

/** Whether `from` may move to `to`: one step forward, or retired from any stage but retired. */
export function canMoveStage(from: ReleaseStage, to: ReleaseStage): boolean {
  return NEXT[from].includes(to);
}

/** The bytes a stage signature covers: which artifact, which stage, since when. */
function stageStatement(record: Omit<ReleaseRecord, 'stageSignature'>): Buffer {
  const last = record.history.at(-1);
  return Buffer.from(`${RELEASE_FORMAT}\n${record.name}@${record.version}\n${record.archiveDigest}\n${record.contentDigest}\n${record.stage}\n${last?.at ?? ''}\n`, 'utf8');
}

/** The record moved to `stage` at `now`, signed with `key` when one is given. */
export function withStage(record: Omit<ReleaseRecord, 'stage' | 'stageSignature'>, stage: ReleaseStage, now: Date, key: KeyObject | undefined): ReleaseRecord {
  const change = { stage, at: now.toISOString(), keyId: key ? publicKeyId(key) : null };
  const next = { ...record, stage, history: [...record.history, change] };
  return { ...next, stageSignature: key ? sign(null, stageStatement(next), key).toString('base64') : null };
}

export function parseReleaseRecord(json: unknown, source: string): ReleaseRecord {
  const parsed = ReleaseRecord.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArteriaError('ARTIFACT_INVALID', `${source}: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'is invalid'}`);
  }
  const record = parsed.data;
  if (record.history.at(-1)?.stage !== record.stage) throw new ArteriaError('ARTIFACT_INVALID', `${source}: its stage ${record.stage} is not its last recorded change`);
  return record;
}

/**
 * Checks the stage signature against the trusted keys; returns the key id, or undefined
 * for an unsigned record. ARTIFACT_SIGNATURE_INVALID when it names an untrusted key or
 * does not verify (the record was edited without the key); ARTIFACT_UNSIGNED when
 * signatures are required and the record has none.
 */
export function verifyReleaseRecord(record: ReleaseRecord, trusted: readonly KeyObject[], required: boolean): string | undefined {
  const label = `${record.name}@${record.version}`;
  const keyId = record.history.at(-1)?.keyId ?? null;
  if (record.stageSignature === null || keyId === null) {
    if (required) throw new ArteriaError('ARTIFACT_UNSIGNED', `${label}: its move to ${record.stage} is not signed, and signatures are required (promote with --key)`);
    return undefined;
  }
  const key = trusted.find((k) => publicKeyId(k) === keyId);
  if (!key) {
    if (!required && trusted.length === 0) return undefined;
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label}: its move to ${record.stage} is signed by key ${keyId}, which is not trusted here`);
  }
  if (!verify(null, stageStatement(record), key, Buffer.from(record.stageSignature, 'base64'))) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label}: the signature over its stage ${record.stage} does not verify (the record changed after it was signed)`);
  }
  return keyId;
}
